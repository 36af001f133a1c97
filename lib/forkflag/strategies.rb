# frozen_string_literal: true

module Forkflag
  # The custom strategies of a client (its +strategies:+ option): Ruby code
  # that decides a strategy the Unleash server names and forkflag does not
  # know. A flag whose strategy has a registered name calls it during
  # evaluation; its truthy answer matches the strategy, and the strategy's
  # constraints, segments and variants then apply as for a built-in one.
  #
  # A strategy is any object that responds to +call(parameters, context)+
  # (a lambda, say), or to +enabled?(parameters, context)+ or
  # +is_enabled?(parameters, context)+ (the official Unleash SDK's
  # interface; objects given in an Array also answer +name+). +parameters+
  # is a frozen Hash of the strategy's parameters (String => String) and
  # +context+ a frozen {StrategyContext}.
  #
  # A strategy that raises evaluates as false; the error is logged once per
  # strategy and exception class, and never reaches the caller of
  # +enabled?+ or +variant+. (Interrupt, SystemExit and other signals of the
  # process are not errors of the strategy: they go on.)
  #
  # @example
  #   Forkflag::Client.new(url: url, token: token, app_name: "shop", strategies: {
  #     "tenant" => ->(parameters, context) { parameters["tenants"].split(",").include?(context.properties[:tenant]) }
  #   })
  class Strategies
    # @!parse
    #   # The names of the strategies forkflag evaluates itself, which a
    #   # custom strategy cannot take: a frozen Array of frozen Strings
    #   # (defined by the native library, from the core's one list).
    #   BUILT_IN = [].freeze

    # Exceptions that end a strategy's call without being its error.
    PASSED_ON = [SignalException, SystemExit].freeze
    private_constant :PASSED_ON

    # @param given [Hash{String, Symbol => Object}, Array<Object>]
    #   strategies by name, or objects that answer +name+
    # @param logger [Logger] where a strategy's errors are logged
    # @param app_name [String, nil] the client's, for contexts without one
    # @param environment [String, nil] the client's, for contexts without one
    # @raise [ArgumentError] for a built-in name, an empty name or one given twice
    # @raise [TypeError] for a name that is not a String or Symbol, or a
    #   strategy that answers none of the methods above
    def initialize(given, logger:, app_name: nil, environment: nil)
      @by_name = {}
      entries(given).each do |name, strategy|
        name = checked_name(name)
        raise ArgumentError, "option :strategies names #{name.inspect} twice" if @by_name.key?(name)

        @by_name[name] = [strategy, entry_point(name, strategy)]
      end
      @by_name.freeze
      @logger = logger
      @app_name = app_name
      @environment = environment
      @logged = {}
      freeze
    end

    # @return [Array<String>] the registered names
    def names
      @by_name.keys
    end

    # @return [Object, nil] the strategy registered under +name+
    def [](name)
      @by_name[name.to_s]&.first
    end

    # @return [Boolean] whether +name+ is registered
    def include?(name)
      @by_name.key?(name.to_s)
    end

    # @return [String] the registered names, e.g. "#<Forkflag::Strategies tenant, region>"
    def inspect
      "#<Forkflag::Strategies #{names.join(", ")}>"
    end

    # Answers the custom strategy +name+ for an evaluation: called by the
    # native evaluator with the strategy's parameters and the evaluation's
    # context argument (nil, a Hash or a {Context}). Never raises for the
    # strategy's own errors.
    # @api private
    # @return [Boolean]
    def call(name, parameters, argument)
      strategy, entry = @by_name[name]
      return false unless strategy

      context = StrategyContext.of(argument, app_name: @app_name, environment: @environment)
      strategy.public_send(entry, parameters, context) ? true : false
    rescue *PASSED_ON
      raise
    rescue Exception => e # rubocop:disable Lint/RescueException
      log_once(name, e)
      false
    end

    private

    def entries(given)
      case given
      when Hash then given.to_a
      when Array then given.map { |strategy| [named(strategy), strategy] }
      else
        raise TypeError, "option :strategies must be a Hash of name => strategy, or an Array of strategies " \
                         "that answer name, got #{Untrusted.describe(given)}"
      end
    end

    def named(strategy)
      return strategy.name if Untrusted.responds_to?(strategy, :name)

      raise TypeError, "option :strategies: #{Untrusted.describe(strategy)} in the Array does not answer name " \
                       "(give strategies without a name method as a Hash of name => strategy)"
    end

    def checked_name(name)
      text = Arguments.name(name, "option :strategies: a strategy name")
      raise ArgumentError, "option :strategies: a strategy name must not be empty" if text.empty?

      if BUILT_IN.include?(text)
        raise ArgumentError, "option :strategies: #{text.inspect} is a built-in strategy and cannot be " \
                             "replaced (built-in: #{BUILT_IN.join(", ")})"
      end

      text
    end

    # The method that answers for the strategy: call, else enabled?, else
    # is_enabled?.
    def entry_point(name, strategy)
      %i[call enabled? is_enabled?].each { |m| return m if Untrusted.responds_to?(strategy, m) }
      raise TypeError, "option :strategies: the strategy #{name.inspect} must respond to call(parameters, context), " \
                       "enabled?(parameters, context) or is_enabled?(parameters, context), " \
                       "got #{Untrusted.describe(strategy)}"
    end

    def log_once(name, error)
      key = [name, error.class]
      return if @logged.key?(key)

      @logged[key] = true
      @logger.error("forkflag: custom strategy #{name.inspect} raised #{error.class}: #{error.message} " \
                    "(it evaluates as false; logged once per strategy and error class)")
    rescue StandardError
      nil
    end
  end
end
