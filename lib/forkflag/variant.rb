# frozen_string_literal: true

module Forkflag
  # The variant {Client#variant} chose. A flag that is off, unknown or has no
  # variants gives the disabled variant (name "disabled", enabled? false).
  #
  # @!method name
  #   @return [String]
  # @!method enabled?
  #   @return [Boolean] whether a real variant was chosen
  # @!method feature_enabled?
  #   @return [Boolean] whether the flag itself was on for the context
  # @!method payload
  #   @return [Hash, nil] { type: "string" | "json" | "csv" | "number", value: String }
  class Variant
    # Builds a variant (for tests and defaults).
    #
    # @param name [String]
    # @param feature_enabled [Boolean]
    # @param payload [Hash, nil] { type:, value: }
    def self.new(name:, feature_enabled: true, payload: nil)
      _build(String(name), feature_enabled ? true : false, payload)
    end

    # @return [Hash] { name:, enabled:, feature_enabled:, payload: }
    def to_h
      { name: name, enabled: enabled?, feature_enabled: feature_enabled?, payload: payload }
    end

    def ==(other)
      other.is_a?(Variant) && other.to_h == to_h
    end
    alias eql? ==

    def hash
      to_h.hash
    end

    def inspect
      "#<Forkflag::Variant #{name} enabled=#{enabled?} feature_enabled=#{feature_enabled?}" \
        "#{" payload=#{payload.inspect}" if payload}>"
    end
  end
end
