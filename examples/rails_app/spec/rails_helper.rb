# frozen_string_literal: true

ENV["RAILS_ENV"] ||= "test"
require_relative "../config/environment"
require "rspec/rails"
# Flags come from config/flags.json, with per-example overrides; no network.
require "forkflag/rspec"

RSpec.configure do |config|
  config.disable_monkey_patching!
  config.order = :random
end
