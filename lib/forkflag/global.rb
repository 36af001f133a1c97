# frozen_string_literal: true

# The application-wide client: built from FORKFLAG_* environment variables
# or set by the application (the Railtie and server integrations use it).
module Forkflag
  # Options read by {Forkflag.options_from_env}: variable => [option, kind].
  ENV_OPTIONS = {
    "FORKFLAG_URL" => %i[url string],
    "FORKFLAG_TOKEN" => %i[token string],
    "FORKFLAG_APP_NAME" => %i[app_name string],
    "FORKFLAG_INSTANCE_ID" => %i[instance_id string],
    "FORKFLAG_ENVIRONMENT" => %i[environment string],
    "FORKFLAG_PROJECT" => %i[project string],
    "FORKFLAG_NAME_PREFIX" => %i[name_prefix string],
    "FORKFLAG_REFRESH_INTERVAL" => %i[refresh_interval seconds],
    "FORKFLAG_METRICS_INTERVAL" => %i[metrics_interval seconds],
    "FORKFLAG_TIMEOUT" => %i[timeout seconds],
    "FORKFLAG_EXIT_TIMEOUT" => %i[exit_timeout seconds],
    "FORKFLAG_BACKUP_PATH" => %i[backup_path path_or_false],
    "FORKFLAG_DISABLE_METRICS" => %i[disable_metrics boolean],
    "FORKFLAG_TLS_CA_FILE" => %i[tls_ca_file string],
    "FORKFLAG_TLS_VERIFY" => %i[tls_verify boolean],
    "FORKFLAG_MAX_PAYLOAD_BYTES" => %i[max_payload_bytes integer],
    "FORKFLAG_FILE" => %i[file string]
  }.freeze

  BOOLEANS = { "1" => true, "true" => true, "yes" => true, "on" => true,
               "0" => false, "false" => false, "no" => false, "off" => false }.freeze
  private_constant :BOOLEANS

  @client = nil
  @client_lock = Mutex.new

  class << self
    # Client options from FORKFLAG_* environment variables (see
    # {ENV_OPTIONS}); unset or empty variables are left out.
    #
    # @param env [#[]] the environment (ENV by default): variable name =>
    #   String or nil
    # @return [Hash{Symbol => Object}]
    # @raise [ArgumentError] naming the variable when a value cannot be read
    # @raise [TypeError] when env has no [] or a value is not a String
    def options_from_env(env = ENV)
      ENV_OPTIONS.each_with_object({}) do |(variable, (option, kind)), options|
        raw = env_text(env, variable)
        next if nil.equal?(raw) || raw.strip.empty?

        options[option] = env_value(variable, raw.strip, kind)
      end
    end

    # The application's client: the one given to {Forkflag.client=} or
    # {Forkflag.configure}, else one built on first use from the FORKFLAG_*
    # environment variables.
    #
    # @return [Client]
    # @raise [Error] when none is configured and the environment names no
    #   source (FORKFLAG_URL or FORKFLAG_FILE)
    def client
      @client || @client_lock.synchronize { @client ||= build_from_env }
    end

    # Sets the application's client.
    # @param client [Client, nil]
    # @raise [TypeError] for anything else
    def client=(client)
      unless nil.equal?(client) || Untrusted.kind?(client, Client)
        raise TypeError, "Forkflag.client= takes a Forkflag::Client or nil, got #{Untrusted.describe(client)}"
      end

      @client = client
    end

    # The application's client if one was set or built, else nil (never
    # builds one).
    #
    # @return [Client, nil]
    def current_client
      @client
    end

    # Builds the application's client from the environment variables merged
    # with the given options (which win), replacing (and closing) any earlier
    # one.
    #
    # @return [Client]
    def configure(**options)
      client = Client.new(**options_from_env, **options)
      previous = @client_lock.synchronize do
        old = @client
        @client = client
        old
      end
      previous&.close
      client
    end

    # Whether a client is configured (set, or buildable from the environment).
    def configured?(env = ENV)
      !@client.nil? || %w[FORKFLAG_URL FORKFLAG_FILE].any? { |v| !env_text(env, v).to_s.strip.empty? }
    end

    # {Client#enabled?} on the application's client.
    def enabled?(name, context = nil, default: false)
      client.enabled?(name, context, default: default)
    end

    # {Client#variant} on the application's client.
    def variant(name, context = nil)
      client.variant(name, context)
    end

    private

    def env_text(env, variable)
      unless Untrusted.responds_to?(env, :[])
        raise TypeError, "the environment must respond to [] (like ENV), got #{Untrusted.describe(env)}"
      end

      Arguments.string(env[variable], variable)
    end

    def build_from_env
      options = options_from_env
      unless options[:url] || options[:file]
        raise Error, "no forkflag client is configured: call Forkflag.configure(...), set Forkflag.client, " \
                     "or set FORKFLAG_URL (with FORKFLAG_TOKEN and FORKFLAG_APP_NAME) or FORKFLAG_FILE"
      end

      Client.new(**options)
    end

    def env_value(variable, raw, kind)
      case kind
      when :string then raw
      when :seconds then env_number(variable, raw, Float)
      when :integer then env_number(variable, raw, Integer)
      when :boolean then env_boolean(variable, raw)
      when :path_or_false then BOOLEANS[raw.downcase] == false ? false : raw
      end
    end

    def env_number(variable, raw, kind)
      kind == Integer ? Integer(raw, 10) : Float(raw)
    rescue ArgumentError
      raise ArgumentError, "#{variable} must be #{kind == Integer ? "an integer" : "a number of seconds"}, " \
                           "got #{Untrusted.describe(raw)}"
    end

    def env_boolean(variable, raw)
      value = BOOLEANS[raw.downcase]
      return value unless value.nil?

      raise ArgumentError, "#{variable} must be one of #{BOOLEANS.keys.join(", ")}, got #{Untrusted.describe(raw)}"
    end
  end
end
