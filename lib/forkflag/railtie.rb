# frozen_string_literal: true

require "rails/railtie"
require "forkflag"
require "forkflag/spring"

module Forkflag
  # Rails integration (`require "forkflag/rails"`).
  #
  # * `config.forkflag` takes the client's options (see {Config::OPTIONS}),
  #   e.g. `config.forkflag.app_name = "shop"`. FORKFLAG_* environment
  #   variables ({Forkflag.options_from_env}) win over it, so one build runs
  #   anywhere; a source given by a variable (FORKFLAG_URL or FORKFLAG_FILE)
  #   replaces the configured url or file. With no source at all,
  #   config/flags.json is used when it exists. Defaults: logger
  #   Rails.logger, app_name from the application's module (Shop -> "shop").
  # * The client is built once, after the application's initializers
  #   (config.after_initialize), and becomes {Forkflag.client}. Building
  #   never waits for the network; built at boot, it is in the process that
  #   Spring, Puma (preload_app!) or Unicorn (preload_app) fork from, so every
  #   child answers at once from the flags it inherits and refreshes them
  #   on its own. Set {Forkflag.client} yourself (in an initializer) and the
  #   Railtie leaves it alone. Nothing configured: no client is built and
  #   {Forkflag.client} raises its error on first use.
  # * When Spring is loaded, its after_fork callback runs ForkSafe.after_fork
  #   ({Forkflag::Spring}).
  # * `config.forkflag.middleware`: nil (default) adds Forkflag::Rack::Context
  #   (the per-request context) when forkflag/rack is available; true wants
  #   it (a warning when it is not available); a Hash wants it with those
  #   options; false never adds it.
  class Railtie < ::Rails::Railtie
    # Keys of config.forkflag that are not client options.
    INTEGRATION_KEYS = %i[middleware].freeze
    # The options that name where flags come from: one set in FORKFLAG_*
    # variables replaces both of config.forkflag's.
    SOURCES = %i[url file].freeze

    config.forkflag = ActiveSupport::OrderedOptions.new

    initializer "forkflag.spring" do
      Forkflag::Spring.install
    end

    initializer "forkflag.middleware" do |app|
      Railtie.insert_middleware(app)
    end

    config.after_initialize do |app|
      Railtie.build_client(app)
    end

    class << self
      # The client options for the application: config.forkflag, then the
      # FORKFLAG_* variables, then the defaults.
      #
      # @return [Hash{Symbol => Object}]
      def client_options(app, env = ENV)
        configured = app.config.forkflag.to_h.transform_keys(&:to_sym).except(*INTEGRATION_KEYS).compact
        from_env = Forkflag.options_from_env(env)
        configured = configured.except(*SOURCES) if SOURCES.any? { |key| from_env.key?(key) }
        with_defaults(app, configured.merge(from_env))
      end

      # Builds {Forkflag.client} unless the application set one or names no
      # source.
      #
      # @return [Client, nil] the client built
      def build_client(app, env = ENV)
        return nil if Forkflag.current_client

        options = client_options(app, env)
        return nil unless source?(options)

        Forkflag.client = Client.new(**options)
      end

      # Adds the per-request context middleware as config.forkflag.middleware says.
      # @return [Boolean] whether it was added
      def insert_middleware(app)
        wanted = app.config.forkflag.middleware
        return false if wanted == false

        unless rack_middleware?
          warn("forkflag: config.forkflag.middleware is set but forkflag/rack is not available") if wanted
          return false
        end
        options = wanted.is_a?(Hash) ? wanted.to_h.transform_keys(&:to_sym) : {}
        app.config.middleware.use(Forkflag::Rack::Context, **options)
        true
      end

      private

      def with_defaults(app, options)
        default_file = app.root.join("config", "flags.json")
        options[:file] = default_file.to_s if !source?(options) && default_file.file?
        options[:logger] ||= ::Rails.logger if ::Rails.logger
        options[:app_name] ||= default_app_name(app)
        options
      end

      def source?(options)
        options.key?(:url) || options.key?(:file) || options.key?(:bootstrap)
      end

      def default_app_name(app)
        name = app.class.module_parent_name
        name ? name.underscore : "rails"
      end

      def rack_middleware?
        require "forkflag/rack"
        defined?(Forkflag::Rack::Context) ? true : false
      rescue LoadError => e
        raise unless e.path.to_s.end_with?("forkflag/rack")

        false
      end
    end
  end
end
