# frozen_string_literal: true

# The official SDK's signatures take their defaults positionally.
# rubocop:disable Style/OptionalBooleanParameter

# The official SDK's API, backed by forkflag (lib/forkflag/unleash.rb).
module Unleash
  # The official SDK's client, backed by a {Forkflag::Client}: the same
  # methods and answers, with forkflag's fork safety, per-process metrics,
  # backup and speed. Creating one never waits on the network, and each
  # client has its own configuration ({Unleash.configure} gives the
  # defaults).
  class Client
    # Flags for a client without a server or bootstrap.
    NO_FLAGS = '{"version":2,"features":[]}'
    private_constant :NO_FLAGS

    # @return [Configuration] this client's options
    attr_reader :configuration
    # @return [Forkflag::Client] the client that evaluates
    attr_reader :forkflag

    # @param opts [Hash] options of {Configuration}, over the defaults of
    #   {Unleash.configure}
    # @raise [ArgumentError] for an unknown or invalid option
    def initialize(opts = nil, **keywords)
      unless opts.nil? || opts.is_a?(Hash)
        raise ArgumentError, "Unleash::Client.new takes a Hash of options, got #{Forkflag::Untrusted.describe(opts)}"
      end

      @configuration = Unleash.configuration.merged((opts || {}).merge(keywords))
      @configuration.validate!
      @logger = @configuration.client_logger
      Unleash.logger = @logger
      @forkflag = Forkflag::Client.new(**forkflag_options)
      fetch_bootstrap_url if @configuration.bootstrap_config&.url && !@bootstrapped
    end

    # Whether the flag is on for the context.
    #
    # @param feature [String, Symbol]
    # @param context [Context, Hash, nil]
    # @param default_value_param [Object] the answer for a flag the
    #   configuration lacks
    # @yield [feature, context] a fallback, called (unless the default is
    #   truthy) on each call; its truth is OR-ed with the default, which
    #   answers for an unknown flag only
    # @return [Boolean] (the default as given, for an unknown flag)
    def is_enabled?(feature, context = nil, default_value_param = false, &fallback_blk)
      default_value = if fallback_blk
                        default_value_param || !!fallback_blk.call(feature, context) # rubocop:disable Style/DoubleNegation
                      else
                        default_value_param
                      end
      evaluated = forkflag_context(context)
      case default_value
      when false then @forkflag.enabled?(feature, evaluated)
      when true then @forkflag.enabled?(feature, evaluated, default: true)
      else
        known = @forkflag.known?(feature)
        answer = @forkflag.enabled?(feature, evaluated)
        known ? answer : default_value
      end
    end
    alias enabled? is_enabled?

    # The opposite of {#is_enabled?}; the default answers for an unknown
    # flag (and the block's truth means "on" for it, as in the official SDK).
    # @return [Boolean]
    def is_disabled?(feature, context = nil, default_value_param = true, &)
      !is_enabled?(feature, context, !default_value_param, &)
    end
    alias disabled? is_disabled?

    # Runs the block when the flag is on.
    # @return the block's value, or nil
    def if_enabled(feature, context = nil, default_value = false, &blk)
      yield(blk) if is_enabled?(feature, context, default_value)
    end

    # Runs the block when the flag is off.
    # @return the block's value, or nil
    def if_disabled(feature, context = nil, default_value = true, &blk)
      yield(blk) if is_disabled?(feature, context, default_value)
    end

    # The variant of the flag for the context; the fallback for a flag the
    # configuration lacks (a known flag that is off gives the disabled
    # variant).
    # @return [Variant] a new one, or fallback_variant itself
    def get_variant(feature, context = Unleash::Context.new, fallback_variant = disabled_variant)
      evaluated = forkflag_context(context)
      known = @forkflag.known?(feature)
      variant = @forkflag.variant(feature, evaluated)
      known ? Variant.from_forkflag(variant) : fallback_variant
    end

    # Sends the metrics counted in this process and stops the client,
    # within its timeout; evaluations keep answering. Never raises.
    def shutdown
      @forkflag.close
      nil
    end

    # Stops the client at once, without sending metrics.
    def shutdown!
      @forkflag.close(timeout: 0, flush: false)
      nil
    end

    # @return [String] the forkflag client's description (never the token)
    def inspect
      "#<Unleash::Client #{@forkflag.inspect}>"
    end

    private

    def disabled_variant
      @disabled_variant ||= Variant.disabled_variant
    end

    def forkflag_context(context)
      case context
      when Unleash::Context then context.to_forkflag
      else context
      end
    end

    def forkflag_options
      config = @configuration
      options = {
        app_name: config.app_name, instance_id: config.instance_id, environment: config.environment,
        project: config.project_name, refresh_interval: config.refresh_interval,
        metrics_interval: config.metrics_interval, timeout: config.timeout, logger: @logger,
        disable_metrics: config.disable_metrics || config.disable_client ? true : false,
        strategies: config.strategies.to_forkflag
      }.compact
      options[:backup_path] = config.backup_file if config.backup_file
      bootstrap = local_bootstrap
      return options.merge(bootstrap: bootstrap || NO_FLAGS, backup_path: false) if config.disable_client

      options[:bootstrap] = bootstrap if bootstrap
      options.merge(server_options(config))
    end

    # url, token (the Authorization header) and the other headers.
    def server_options(config)
      if config.url.nil?
        raise ArgumentError, "url is a required parameter (or disable_client: true, with a bootstrap_config)"
      end

      headers = http_headers(config)
      token_key = headers.keys.find { |k| k.casecmp?("Authorization") }
      unless token_key
        raise ArgumentError, "custom_http_headers must include Authorization: a client API token of the server"
      end

      token = headers.delete(token_key)
      # A Proc is called again before each request; the Authorization it
      # gives replaces the token.
      custom = config.custom_http_headers.respond_to?(:call) ? -> { http_headers(config) } : headers
      { url: config.url, token: token, custom_headers: custom }
    end

    # The custom headers, with String names and values.
    def http_headers(config)
      headers = config.generate_custom_http_headers
      raise ArgumentError, "custom_http_headers must give a Hash, got #{headers.class}" unless headers.is_a?(Hash)

      headers.to_h { |k, v| [k.to_s, v.to_s] }
    end

    # The bootstrap payload from data, a block or a file; nil (and a
    # warning) when it cannot be had, so the backup is read instead.
    def local_bootstrap
      payload = @configuration.bootstrap_config&.local_payload
      @bootstrapped = !payload.nil?
      payload
    rescue StandardError => e
      @logger.warn("unleash: bootstrap failed (#{e.class}: #{e.message}); reading the backup instead")
      nil
    end

    # A bootstrap URL is fetched on a thread of its own: the client answers
    # from its backup (or nothing) until then, and a server that answered
    # first is not replaced.
    def fetch_bootstrap_url
      bootstrap = @configuration.bootstrap_config
      offline = @configuration.disable_client
      @bootstrap_thread = Thread.new do
        body = bootstrap.fetch_url(@configuration)
        @forkflag.update(body) if body && (offline || !@forkflag.ready?)
      rescue StandardError => e
        @logger.warn("unleash: bootstrap from #{bootstrap.url} failed (#{e.class}: #{e.message})")
      end
    end
  end
end
# rubocop:enable Style/OptionalBooleanParameter
