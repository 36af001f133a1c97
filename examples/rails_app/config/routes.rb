# frozen_string_literal: true

Rails.application.routes.draw do
  get "/flags", to: "flags#show"
end
