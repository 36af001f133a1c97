# frozen_string_literal: true

# The official SDK's API, backed by forkflag (lib/forkflag/unleash.rb).
module Unleash
  # A variant, as the official SDK's: a name, whether it is enabled, its
  # payload ({"type" => ..., "value" => ...} from the server) and whether
  # the flag was enabled.
  class Variant
    attr_accessor :name, :enabled, :payload, :feature_enabled

    # @param params [Hash] name (required), enabled, payload, feature_enabled;
    #   Symbol or String keys
    # @raise [ArgumentError] when params is not a Hash or has no name
    def initialize(params = {})
      raise ArgumentError, "Variant initializer requires a hash." unless params.is_a?(Hash)

      @name = params.values_at("name", :name).compact.first
      @enabled = params.values_at("enabled", :enabled).compact.first || false
      @payload = params.values_at("payload", :payload).compact.first
      @feature_enabled = params.values_at("feature_enabled", :feature_enabled).compact.first || false
      raise ArgumentError, "Variant requires a name." if @name.nil?
    end

    # The variant of a forkflag answer.
    # @api private
    def self.from_forkflag(variant)
      payload = variant.payload
      allocate.__send__(:assign, variant.name, variant.enabled?,
                        payload && { "type" => payload[:type], "value" => payload[:value] }, variant.feature_enabled?)
    end

    # A new disabled variant.
    def self.disabled_variant
      new(name: "disabled", enabled: false, feature_enabled: false)
    end

    # @return [String] every field, as the official SDK prints a variant
    def to_s
      "<Variant: name=#{name},enabled=#{enabled},payload=#{payload},feature_enabled=#{feature_enabled}>"
    end

    # Variants are equal when their name, enabled, payload and
    # feature_enabled are.
    #
    # @param other [Object]
    # @return [Boolean]
    def ==(other)
      other.is_a?(Variant) && name == other.name && enabled == other.enabled && payload == other.payload &&
        feature_enabled == other.feature_enabled
    end

    private

    def assign(name, enabled, payload, feature_enabled)
      @name = name
      @enabled = enabled
      @payload = payload
      @feature_enabled = feature_enabled
      self
    end
  end
end
