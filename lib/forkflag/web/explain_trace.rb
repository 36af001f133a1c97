# frozen_string_literal: true

require_relative "tables"

module Forkflag
  class Web
    # The explain page's rendering of an {Explanation}: its plain data
    # (Explanation#to_h) as tables a person reads top to bottom: the answer
    # and its reason, the dependencies, each strategy (its constraints with
    # the context value read and the result, its segments, its rollout
    # bucket against the percentage), how the variant was chosen, and the
    # explanation's own text. Strategies are numbered from 1, as the text is.
    class ExplainTrace
      include Tables

      # @param request [Request] (for links)
      def initialize(request)
        @request = request
      end

      # @param explanation [Explanation]
      # @return [Markup]
      def render(explanation)
        data = explanation.to_h
        [tag("h2", "Answer"), facts(answer_rows(data), id: "answer"),
         dependencies(data[:dependencies].to_a),
         tag("h2", "Strategies"), strategies(data[:strategies].to_a),
         tag("h2", "Variant"), variant_trace(data[:variant_trace]),
         tag("h2", "As text"), tag("pre", explanation.to_s, id: "explanation-text")]
      end

      private

      attr_reader :request

      def none(text)
        tag("p", text, class: "muted")
      end

      def answer_rows(data)
        variant = data[:variant] || {}
        [["flag", data[:found] ? flag_link(data[:name]) : tag("code", data[:name])],
         ["enabled", on_off(data[:enabled])],
         ["variant",
          join(tag("code", variant[:name], id: "variant"),
               variant[:payload] ? [" ", payload(variant[:payload])] : nil)],
         ["reason",
          join(tag("code", data[:reason], id: "reason"), " – ", Explanation::REASON_TEXTS.fetch(data[:reason], ""))],
         ["matched strategy", matched(data[:strategy])]]
      end

      def strategy_label(strategy, word = "strategy")
        "#{word} #{strategy[:index].to_i + 1}: #{strategy[:name]}"
      end

      def matched(strategy)
        return tag("span", "none", class: "muted", id: "matched-strategy") if strategy.nil?

        tag("span", [strategy_label(strategy), " ", data(strategy[:parameters].to_h)], id: "matched-strategy")
      end

      def dependencies(deps)
        return nil if deps.empty?

        rows = deps.map do |d|
          [d[:found] == false ? tag("code", d[:feature]) : flag_link(d[:feature]),
           d[:expected_enabled] == false ? "off" : "on", values_list(d[:expected_variants]),
           on_off(d[:enabled]), d[:variant], yes_no(d[:met])]
        end
        [tag("h2", "Dependencies"),
         table(["flag", "must be", "with variant", "was", "variant", "met"], rows, id: "explain-dependencies")]
      end

      def strategies(list)
        return none("The flag has no strategies.") if list.empty?

        list.map { |s| strategy(s) }
      end

      def strategy(strategy)
        heading = [strategy_label(strategy, "Strategy"), " – ",
                   tag("span", outcome(strategy), class: outcome_class(strategy))]
        tag("section", [
              tag("h3", heading),
              facts([["parameters", data(strategy[:parameters].to_h)], ["its own rule", data(strategy[:kind])],
                     ["rollout", rollout(strategy[:rollout])]]),
              constraints(strategy[:constraints].to_a), segments(strategy[:segments].to_a)
            ], class: strategy[:matched] ? "strategy matched" : "strategy", id: "explain-strategy-#{strategy[:index]}")
      end

      def outcome(strategy)
        return "not evaluated" unless strategy[:evaluated]

        strategy[:matched] ? "matched" : "did not match"
      end

      def outcome_class(strategy)
        return "muted" unless strategy[:evaluated]

        strategy[:matched] ? "on" : "off"
      end

      # The stickiness, the value it read, the bucket against the percentage.
      def rollout(rollout)
        return tag("span", "–", class: "muted") if rollout.nil?

        percentage = rollout[:percentage].to_i
        if rollout[:bucket].nil?
          return join(stickiness(rollout), ": no value to hash → ", tag("span", "no match", class: "off"))
        end

        inside = rollout[:bucket] <= percentage
        join(stickiness(rollout), ", group ", tag("code", rollout[:group_id]), ": bucket ",
             tag("strong", rollout[:bucket]), " against ", tag("strong", "#{percentage}%"), " → ",
             inside ? tag("span", "inside", class: "on") : tag("span", "outside", class: "off"))
      end

      def stickiness(trace)
        join("stickiness ", tag("code", trace[:stickiness]), " (", tag("code", trace[:context_name]), " = ",
             scalar(trace[:value]), ")")
      end

      def constraints(list)
        return nil if list.empty?

        [tag("h4", "Constraints"), constraints_table(list, read: true)]
      end

      def segments(list)
        return nil if list.empty?

        [tag("h4", "Segments"), list.map do |s|
          body = if s[:found] == false
                   none("missing from the payload: never matches")
                 else
                   constraints_table(s[:constraints].to_a, read: true)
                 end
          tag("div", [tag("p", ["Segment ", tag("code", s[:id]), ": ", result(s[:result])]), body], class: "segment")
        end]
      end

      # How the variant was chosen: an override that matched, or the
      # stickiness value's bucket among the weights.
      def variant_trace(trace)
        return none("No variant was chosen (the flag is off for this context, or has no variants).") if trace.nil?

        rows = [["from", "#{trace[:source]} variants"]]
        if trace[:override]
          rows << ["override", data(trace[:override])]
        else
          rows << ["stickiness", stickiness(trace)]
          rows << ["bucket", join(tag("strong", trace[:bucket]), " of ", trace[:total_weight], ", group ",
                                  tag("code", trace[:group_id]))]
        end
        rows << ["weights", weights(trace[:weights].to_a)]
        known = %i[source override stickiness context_name value bucket total_weight group_id weights]
        trace.each { |key, value| rows << [key.to_s.tr("_", " "), data(value)] unless known.include?(key) }
        facts(rows, id: "variant-trace")
      end

      def weights(list)
        return tag("span", "none", class: "muted") if list.empty?

        table(%w[variant weight], list.map { |w| [tag("code", w[:name]), w[:weight]] })
      end
    end
  end
end
