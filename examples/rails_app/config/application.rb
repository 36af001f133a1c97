# frozen_string_literal: true

require_relative "boot"

require "rails"
require "action_controller/railtie"
require "forkflag/rails"

module RailsApp
  # An API-only app: one controller, no database, no assets.
  class Application < Rails::Application
    config.load_defaults 6.1
    config.api_only = true
    config.eager_load = false
    config.hosts.clear
    config.logger = ActiveSupport::Logger.new($stderr)
    config.log_level = :warn
    config.secret_key_base = "example-app-only"

    # forkflag: FORKFLAG_URL, FORKFLAG_TOKEN, FORKFLAG_APP_NAME, ... win over
    # these; without them the flags come from config/flags.json.
    config.forkflag.refresh_interval = 15
  end
end
