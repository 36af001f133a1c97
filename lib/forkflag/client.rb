# frozen_string_literal: true

require "securerandom"

module Forkflag
  # Evaluates feature flags.
  #
  # @example
  #   client = Forkflag::Client.new(file: "config/flags.json")
  #   client.enabled?("new-checkout", { userId: "42", properties: { plan: "pro" } })
  #   client.variant("banner", { user_id: "7" }).name
  #
  # @!method enabled?(name, context = nil, default: false)
  #   Whether the flag is on for the context. Never raises for an unknown
  #   flag or a missing context field.
  #   @param name [String, Symbol]
  #   @param context [Hash, Context, nil] keys as Symbols or Strings, in
  #     snake_case or camelCase (userId, sessionId, remoteAddress,
  #     currentTime, environment, appName, properties); other top-level keys
  #     are custom fields
  #   @param default [Boolean] the answer for a flag the configuration lacks
  #   @return [Boolean]
  #   @raise [TypeError] when name or context has the wrong type
  #
  # @!method variant(name, context = nil)
  #   The variant of the flag for the context.
  #   @return [Variant] the disabled variant for an unknown or disabled flag
  #
  # @!method flag_names
  #   @return [Array<String>] names of the loaded flags, sorted
  class Client
    class << self
      # Creates a client. Never blocks on the network.
      #
      # @param options see {Config::OPTIONS}
      # @raise [ArgumentError, TypeError] for an unknown or invalid option
      # @raise [ConfigError] when the bootstrap or file payload is invalid
      def new(**options)
        config = Config.new(**options)
        client = _build(config.native_options)
        client.__send__(:setup, config)
        client
      end
    end

    # @return [Config]
    attr_reader :config

    # Registers a listener for impression events of flags that have
    # impressionData enabled. The listener gets a Hash:
    # { event_type: :is_enabled | :get_variant, event_id:, feature_name:,
    #   enabled:, variant:, context: }. A listener that raises is logged and
    # does not affect the evaluation.
    #
    # @yieldparam event [Hash]
    # @return [Proc] the listener
    def on_impression(&listener)
      raise ArgumentError, "on_impression needs a block" unless listener

      @impression_listeners << listener
      self._impressions = true
      listener
    end

    # Stops the client. Evaluations keep answering from the last
    # configuration. Calling it again does nothing.
    # @return [nil]
    def close
      @closed = true
      nil
    end

    # @return [Boolean]
    def closed?
      @closed
    end

    # Replaces the configuration with a client-features payload.
    #
    # @param json [String]
    # @return [Integer] number of flags loaded
    # @raise [ConfigError] when the payload is invalid (the current
    #   configuration stays)
    def update(json)
      raise TypeError, "update takes a JSON String, got #{json.inspect}" unless json.is_a?(String)

      count = _update(json)
      log_payload_warnings
      count
    end

    def inspect
      "#<Forkflag::Client flags=#{flag_names.size}#{" closed" if closed?}>"
    end

    private

    def setup(config)
      @config = config
      @logger = config.logger
      @impression_listeners = []
      @closed = false
      log_payload_warnings
    end

    def log_payload_warnings
      _take_warnings.each { |problem| @logger.warn("forkflag: #{problem}") }
    end

    EVENT_TYPES = { isEnabled: :is_enabled, getVariant: :get_variant }.freeze
    private_constant :EVENT_TYPES

    # Called by the native evaluator for flags with impression data.
    def _emit_impression(event_type, name, enabled, variant, context)
      event = {
        event_type: EVENT_TYPES.fetch(event_type, event_type),
        event_id: SecureRandom.uuid,
        feature_name: name.to_s,
        enabled: enabled,
        variant: variant&.name,
        context: context.is_a?(Context) ? context.to_h : (context || {})
      }.freeze
      @impression_listeners.each do |listener|
        listener.call(event)
      rescue StandardError => e
        @logger.error("forkflag: impression listener raised #{e.class}: #{e.message}")
      end
      nil
    end
  end
end
