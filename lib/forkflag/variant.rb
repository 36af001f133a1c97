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
    # @param name [String, Symbol]
    # @param feature_enabled [Boolean] (any object: its truth)
    # @param payload [Hash, nil] { type:, value: } (Symbol or String keys, String values)
    # @raise [TypeError, ArgumentError] naming the argument that is wrong
    def self.new(name:, feature_enabled: true, payload: nil)
      _build(Arguments.name(name, "Forkflag::Variant.new name:"), feature_enabled ? true : false,
             payload_of(payload))
    end

    # A plain Hash of the payload's type and value, checked.
    def self.payload_of(payload)
      return nil if nil.equal?(payload)

      Arguments.hash_value(payload, "Forkflag::Variant.new payload:", "a Hash of :type and :value")
      %i[type value].to_h do |key|
        # Looked up without the Hash's default proc, as a Symbol, then a String.
        value = payload.key?(key) ? payload[key] : payload.fetch(key.name, nil)
        [key, Arguments.string(value, "Forkflag::Variant.new payload: #{key.inspect}") ||
          raise(TypeError, "Forkflag::Variant.new payload: needs #{key.inspect} (a String)")]
      end
    end
    private_class_method :payload_of

    # @return [Hash] { name:, enabled:, feature_enabled:, payload: }
    def to_h
      { name: name, enabled: enabled?, feature_enabled: feature_enabled?, payload: payload }
    end

    # Variants are equal when their name, enabled?, feature_enabled? and
    # payload are (also as Hash keys: {#eql?}).
    #
    # @param other [Object]
    # @return [Boolean]
    def ==(other)
      other.is_a?(Variant) && other.to_h == to_h
    end
    alias eql? ==

    # @return [Integer] the hash of {#to_h}, consistent with {#==}
    def hash
      to_h.hash
    end

    # @return [String] e.g. "#<Forkflag::Variant blue enabled=true feature_enabled=true>"
    def inspect
      "#<Forkflag::Variant #{name} enabled=#{enabled?} feature_enabled=#{feature_enabled?}" \
        "#{" payload=#{payload.inspect}" if payload}>"
    end
  end
end
