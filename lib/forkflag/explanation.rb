# frozen_string_literal: true

require "json"

module Forkflag
  # Why a flag answered as it did for a context: what {Client#explain}
  # returns. Frozen. The answer is the one {Client#enabled?} and
  # {Client#variant} give for the same flag and context (where a rollout or
  # variant is random, the explanation draws its own number, and says so);
  # explaining counts no metrics and fires no impression.
  #
  # @example
  #   explanation = client.explain("checkout-v2", user_id: "42")
  #   explanation.enabled?  # => true
  #   explanation.reason    # => :strategy_matched
  #   explanation.strategy  # => { index: 1, name: "flexibleRollout", parameters: { "rollout" => "50", ... } }
  #   puts explanation      # a few readable lines
  class Explanation
    # The reasons an answer can have, each with what it means in words
    # (the status page and {#to_s} show them).
    REASON_TEXTS = {
      not_found: "no flag of this name is loaded",
      disabled: "the flag is switched off",
      dependency_failed: "a flag it depends on did not answer as required",
      no_strategies: "the flag is on and has no strategy",
      strategy_matched: "a strategy matched",
      no_strategy_matched: "no strategy matched"
    }.freeze
    # The reasons an answer can have.
    REASONS = REASON_TEXTS.keys.freeze

    # @return [String] the flag's name
    attr_reader :name
    # @return [Variant] the variant {Client#variant} gives
    attr_reader :variant
    # @return [Symbol] one of {REASONS}: +:not_found+ (no flag of that
    #   name), +:disabled+ (switched off), +:dependency_failed+ (a parent
    #   flag did not answer as required), +:no_strategies+ (on, with no
    #   strategy: on for everyone), +:strategy_matched+, +:no_strategy_matched+
    attr_reader :reason
    # @return [Hash, nil] the strategy that matched: +{index:, name:, parameters:}+
    attr_reader :strategy
    # @return [Array<Hash>] each strategy in order, as {Client#flag}
    #   describes it, plus +evaluated+ (false after the one that matched,
    #   or when the flag is off), +matched+, +kind+ (what the strategy's own
    #   rule read and decided), +rollout+ (+stickiness+, +context_name+ and
    #   +value+ hashed, +bucket+ against +percentage+, +group_id+, or nil),
    #   +constraints+ and +segments+ each with the +context_value+ read and
    #   its +result+
    attr_reader :strategies
    # @return [Array<Hash>] each dependency: +feature+, +found+,
    #   +expected_enabled+, +expected_variants+, the parent's +enabled+ and
    #   +variant+, +met+
    attr_reader :dependencies
    # @return [Hash, nil] how the variant was chosen: +source+ (+"strategy"+
    #   or +"flag"+), +stickiness+, +context_name+ and +value+ hashed,
    #   +bucket+ of +total_weight+, +weights+, or the +override+ that
    #   matched; nil when the flag is off or has no variants
    attr_reader :variant_trace

    # @param enabled [Boolean] the answer
    # @param variant [Variant] the variant
    # @param trace [Hash] the explanation's plain data (Symbol keys)
    # @api private
    def initialize(enabled, variant, trace)
      @enabled = enabled ? true : false
      @variant = variant
      @name = trace.fetch(:name)
      @reason = trace.fetch(:reason).to_sym
      @strategy = trace[:strategy]
      @strategies = trace.fetch(:strategies)
      @dependencies = trace.fetch(:dependencies)
      @variant_trace = trace[:variant_trace]
      @found = trace.fetch(:found)
      freeze
    end

    # @return [Boolean] whether the flag is enabled for the context
    def enabled?
      @enabled
    end
    alias enabled enabled?

    # @return [Boolean] whether the configuration has the flag
    def found?
      @found
    end

    # @return [Hash] plain data (Symbols, Strings, numbers, Booleans, nil,
    #   Arrays and Hashes; strategy parameters keep their String names)
    def to_h
      {
        name: name, found: found?, enabled: enabled?, reason: reason,
        variant: { name: variant.name, enabled: variant.enabled?, feature_enabled: variant.feature_enabled?,
                   payload: variant.payload },
        strategy: strategy, dependencies: dependencies, strategies: strategies, variant_trace: variant_trace
      }
    end

    # @return [String] a few readable lines: the answer and why
    def to_s
      Lines.new(self).to_s
    end

    # @return [String]
    def inspect
      "#<Forkflag::Explanation #{name.inspect} enabled=#{enabled?} reason=#{reason} variant=#{variant.name.inspect}>"
    end

    # Writes an explanation as text (see {Explanation#to_s}).
    # @api private
    class Lines
      # @param explanation [Explanation]
      def initialize(explanation)
        @e = explanation
        @lines = []
      end

      # @return [String]
      def to_s
        headline
        @e.dependencies.each { |d| dependency(d) }
        @e.strategies.each { |s| strategy(s) }
        variant
        @lines.join("\n")
      end

      private

      def headline
        answer = @e.enabled? ? "enabled" : "disabled"
        why = if @e.reason == :strategy_matched
                "strategy #{@e.strategy[:index] + 1} (#{@e.strategy[:name]}) matched"
              else
                REASON_TEXTS.fetch(@e.reason)
              end
        @lines << "#{@e.name.inspect}: #{answer}: #{why}"
      end

      def dependency(dep)
        state = if dep[:enabled].nil?
                  dep[:note] || "not evaluated"
                else
                  "#{dep[:enabled] ? "enabled" : "disabled"}, variant #{dep[:variant].inspect}"
                end
        wanted = dep[:expected_enabled] ? "enabled" : "disabled"
        wanted += " with variant #{dep[:expected_variants].join(" or ")}" unless dep[:expected_variants].empty?
        @lines << "  depends on #{dep[:feature].inspect} (#{wanted}): #{state}: #{dep[:met] ? "met" : "not met"}"
      end

      def strategy(strategy)
        head = "  strategy #{strategy[:index] + 1} #{strategy[:name]}"
        unless strategy[:evaluated]
          @lines << "#{head}: not evaluated"
          return
        end
        @lines << "#{head}: #{strategy[:matched] ? "matched" : "did not match"}"
        rollout(strategy[:rollout]) if strategy[:rollout]
        strategy[:constraints].each { |c| constraint(c, "    ") }
        strategy[:segments].each { |s| segment(s) }
      end

      def rollout(trace)
        from = trace[:value].nil? ? trace[:context_name] : "#{trace[:context_name]} #{trace[:value].inspect}"
        bucket = trace[:bucket].nil? ? "no value to hash" : "bucket #{trace[:bucket]}"
        @lines << "    rollout #{trace[:percentage]}% by #{trace[:stickiness]}: #{bucket} (from #{from})"
      end

      def constraint(con, indent)
        values = con[:values].size == 1 ? con[:values].first.inspect : "[#{con[:values].map(&:inspect).join(", ")}]"
        op = "#{"NOT " if con[:inverted]}#{con[:operator]}#{" (ignoring case)" if con[:case_insensitive]}"
        read = con[:context_value].nil? ? "absent" : con[:context_value].inspect
        @lines << "#{indent}#{con[:context_name]} #{op} #{values}: read #{read}: #{con[:result]}"
      end

      def segment(segment)
        unless segment[:found]
          @lines << "    segment #{segment[:id]}: not in the configuration: false"
          return
        end
        @lines << "    segment #{segment[:id]}: #{segment[:result]}"
        segment[:constraints].each { |c| constraint(c, "      ") }
      end

      def variant
        t = @e.variant_trace
        return unless t

        @lines << "  variant #{@e.variant.name.inspect}: #{variant_reason(t)}"
      end

      def variant_reason(trace)
        if (o = trace[:override])
          "override for #{o[:context_name]} #{o[:value].inspect}"
        elsif trace[:bucket]
          from = trace[:value].nil? ? "a random number" : "#{trace[:context_name]} #{trace[:value].inspect}"
          weights = trace[:weights].map { |w| "#{w[:name]} #{w[:weight]}" }.join(", ")
          "bucket #{trace[:bucket]} of #{trace[:total_weight]} from #{from} (#{trace[:source]} variants: #{weights})"
        else
          trace[:note].to_s
        end
      end
    end
    private_constant :Lines

    # Reads the plain data the native side gives as JSON: Symbol keys,
    # except under +parameters+ (strategy parameters keep their String
    # names, as in the payload); everything frozen.
    # @api private
    module PlainData
      # @param json [String]
      # @return [Object]
      def self.parse(json)
        convert(JSON.parse(json), false)
      end

      # @api private
      def self.convert(value, string_keys)
        case value
        when Hash
          value.to_h { |k, v| [string_keys ? k.freeze : k.to_sym, convert(v, k == "parameters")] }.freeze
        when Array then value.map { |v| convert(v, false) }.freeze
        when String then value.freeze
        else value
        end
      end
    end
  end
end
