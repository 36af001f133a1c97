# frozen_string_literal: true

require "logger"
require "securerandom"
require "tmpdir"
require "uri"

# The official SDK's API, backed by forkflag (lib/forkflag/unleash.rb).
module Unleash
  # The options of an {Unleash::Client}, as the official SDK names them.
  # {Unleash.configure} sets the defaults every client starts from; the
  # options given to {Client#initialize Client.new} apply to that client only.
  class Configuration
    # Option => default (a Proc is called for each configuration).
    DEFAULTS = {
      url: nil, app_name: nil, environment: "default", instance_id: -> { SecureRandom.uuid },
      project_name: nil, custom_http_headers: -> { {} }, disable_client: false, disable_metrics: false,
      timeout: 30, retry_limit: Float::INFINITY, refresh_interval: 15, metrics_interval: 60,
      backup_file: nil, logger: nil, log_level: Logger::WARN, bootstrap_config: nil,
      strategies: -> { Unleash::Strategies.new }, use_delta_api: false, experimental_mode: nil
    }.freeze

    # @!attribute [rw] url
    #   @return [String, nil] the Unleash API URL
    #
    # @!attribute [rw] app_name
    #   @return [String, nil] the application name reported to Unleash
    #
    # @!attribute [rw] environment
    #   @return [String] the environment reported with metrics (default "default")
    #
    # @!attribute [rw] instance_id
    #   @return [String] the instance id reported to Unleash (default: a new UUID)
    #
    # @!attribute [rw] project_name
    #   @return [String, nil] fetch only this project's flags
    #
    # @!attribute [rw] custom_http_headers
    #   @return [Hash, Proc] extra HTTP headers, or a Proc giving them before each request
    #
    # @!attribute [rw] disable_client
    #   @return [Boolean] evaluate from the bootstrap or backup only: no thread, no requests
    #
    # @!attribute [rw] disable_metrics
    #   @return [Boolean] do not register or send metrics
    #
    # @!attribute [rw] timeout
    #   @return [Numeric] seconds: the bound on each request (default 30)
    #
    # @!attribute [rw] retry_limit
    #   @return [Numeric] accepted; forkflag never stops polling (it backs off; see docs/MIGRATING.md)
    #
    # @!attribute [rw] refresh_interval
    #   @return [Numeric] seconds between refreshes (default 15)
    #
    # @!attribute [rw] metrics_interval
    #   @return [Numeric] seconds between metrics reports (default 60)
    #
    # @!attribute [rw] backup_file
    #   @return [String, nil] the backup file (nil: a private one forkflag chooses)
    #
    # @!attribute [rw] logger
    #   @return [Logger, nil] the logger (nil: one to $stdout at +log_level+)
    #
    # @!attribute [rw] log_level
    #   @return [Integer] the level of the default logger (default Logger::WARN)
    #
    # @!attribute [rw] bootstrap_config
    #   @return [Bootstrap::Configuration, nil] the flags to start from before the server answers
    #
    # @!attribute [rw] strategies
    #   @return [Strategies] the custom strategies
    #
    # @!attribute [rw] use_delta_api
    #   @return [Boolean] accepted and ignored by the client (it names the endpoint of {#fetch_toggles_uri})
    #
    # @!attribute [rw] experimental_mode
    #   @return [Object] accepted and ignored

    # A reader and a writer per option (documented above, for YARD).
    attr_accessor(*DEFAULTS.keys)

    # @param opts [Hash] options by name (Symbols or Strings)
    # @raise [ArgumentError] for an unknown option, or custom_http_headers
    #   that are neither a Hash nor callable
    def initialize(opts = {})
      raise ArgumentError, "Unleash::Configuration takes a Hash of options, got #{opts.class}" unless opts.is_a?(Hash)

      DEFAULTS.each { |name, default| __send__("#{name}=", default.is_a?(Proc) ? default.call : default) }
      apply(opts)
    end

    # Sets options by name (Symbols or Strings).
    # @return [self]
    def apply(opts)
      opts.each do |key, value|
        name = key.to_s
        unless DEFAULTS.key?(name.to_sym)
          raise ArgumentError, "unknown configuration parameter '#{name}' (known: #{DEFAULTS.keys.join(", ")})"
        end

        __send__("#{name}=", value)
      end
      validate_custom_http_headers!
      self
    end

    # A copy with these options applied: the strategies registry is copied
    # too, so a client's additions do not change the defaults.
    def merged(opts)
      copy = dup
      copy.strategies = strategies.dup
      copy.apply(opts)
    end

    # Raises for what the client cannot work with (unless disable_client).
    # @raise [ArgumentError]
    def validate!
      return if disable_client

      raise ArgumentError, "app_name is a required parameter." if app_name.nil?

      validate_custom_http_headers!
    end

    # The logger a client writes to: the configured one (or $stdout's) at
    # log_level, as the official SDK makes it.
    def client_logger
      base = logger || Logger.new($stdout)
      copy = base.clone
      copy.level = log_level if log_level
      copy
    end

    # The headers sent with every request: the custom ones (a Proc's are
    # asked now).
    # @return [Hash]
    def generate_custom_http_headers
      custom_http_headers.respond_to?(:call) ? custom_http_headers.call : custom_http_headers
    end

    # The headers the official SDK sends, with the custom ones on top.
    def http_headers
      {
        "UNLEASH-INSTANCEID" => instance_id, "UNLEASH-APPNAME" => app_name,
        "Unleash-Client-Spec" => Unleash::CLIENT_SPECIFICATION_VERSION
      }.merge!(generate_custom_http_headers.to_h)
    end

    # @return [String, nil] the URL without a trailing "/"
    def url_stripped_of_slash
      url&.delete_suffix("/")
    end

    # @return [URI] where the flags are fetched (the delta endpoint with
    #   +use_delta_api+; with +project=+ when a project is named)
    def fetch_toggles_uri
      uri = URI("#{url_stripped_of_slash}/client/#{use_delta_api ? "delta" : "features"}")
      uri.query = "project=#{project_name}" if project_name
      uri
    end

    # @return [URI] where metrics are sent
    def client_metrics_uri
      URI("#{url_stripped_of_slash}/client/metrics")
    end

    # @return [URI] where the client registers
    def client_register_uri
      URI("#{url_stripped_of_slash}/client/register")
    end

    # @return [Numeric] +metrics_interval+ in milliseconds
    def metrics_interval_in_millis
      metrics_interval * 1_000
    end

    def use_bootstrap?
      bootstrap_config&.valid? ? true : false
    end

    # The official SDK recomputes its backup path here; forkflag keeps a
    # backup_file you set and otherwise chooses a private one itself.
    def refresh_backup_file!
      backup_file
    end

    private

    def validate_custom_http_headers!
      return if custom_http_headers.is_a?(Hash) || custom_http_headers.respond_to?(:call)

      raise ArgumentError, "custom_http_headers must be a Hash or a Proc."
    end
  end

  class << self
    # The defaults every {Client} starts from.
    # @return [Configuration]
    attr_accessor :configuration

    # The logger of the client made last (the configured one before).
    attr_writer :logger

    # Sets the defaults of the clients made after it.
    # @yieldparam config [Configuration]
    # @return [Configuration]
    def configure
      yield(configuration)
      configuration.validate!
      configuration
    end

    # The logger of the client made last, else the configured one.
    #
    # @return [Logger]
    def logger
      @logger || configuration.client_logger
    end

    # The default custom strategies ({Configuration#strategies}).
    def strategies
      configuration.strategies
    end
  end
end
