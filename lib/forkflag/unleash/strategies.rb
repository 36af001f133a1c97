# frozen_string_literal: true

# The official SDK's API, backed by forkflag (lib/forkflag/unleash.rb).
module Unleash
  # Raised when a custom strategy takes a built-in strategy's name.
  class DefaultOverrideError < RuntimeError; end

  # The custom strategies of a configuration: objects that answer `name`
  # and `enabled?(parameters, context)` (or `is_enabled?`, as the official
  # README shows them).
  class Strategies
    # The strategies forkflag evaluates itself.
    DEFAULT_STRATEGIES = Forkflag::Strategies::BUILT_IN.sort.freeze

    # @return [Hash{String => Object}] custom strategies by name
    attr_accessor :strategies

    # An empty set: no custom strategies.
    def initialize
      @strategies = {}
    end

    # A copy has its own Hash of strategies (the strategies are shared).
    #
    # @param other [Strategies] the original
    # @return [void]
    def initialize_copy(other)
      super
      @strategies = other.strategies.dup
    end

    # Registers a custom strategy under its name (a later one of the same
    # name replaces it).
    # @raise [DefaultOverrideError] for a built-in strategy's name
    # @raise [ArgumentError] for an object that does not answer name, or
    #   answers none of enabled?, is_enabled? and call
    # @return the strategy
    def add(strategy)
      unless strategy.respond_to?(:name)
        raise ArgumentError, "a custom strategy must answer name, got #{Forkflag::Untrusted.describe(strategy)}"
      end
      raise DefaultOverrideError, "Cannot override a default strategy" if DEFAULT_STRATEGIES.include?(strategy.name)

      unless %i[enabled? is_enabled? call].any? { |m| strategy.respond_to?(m) }
        raise ArgumentError, "the custom strategy #{strategy.name.inspect} must answer enabled?(parameters, context) " \
                             "or is_enabled?(parameters, context)"
      end

      @strategies[strategy.name.to_s] = strategy
    end

    # Whether the name is a registered custom strategy or a built-in one.
    def includes?(name)
      @strategies.key?(name.to_s) || DEFAULT_STRATEGIES.include?(name.to_s)
    end

    # @return [Array<Object>] the registered custom strategies
    def custom_strategies
      @strategies.values
    end

    # The custom strategies as the registration payload lists them.
    def known_strategies
      @strategies.keys.map { |name| { name: name } }
    end

    # What Forkflag::Client takes (nil without custom strategies).
    # @api private
    def to_forkflag
      @strategies.empty? ? nil : @strategies.dup
    end
  end
end
