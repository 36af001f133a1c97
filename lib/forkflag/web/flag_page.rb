# frozen_string_literal: true

require_relative "page"

module Forkflag
  class Web
    # "/flags/<name>" (the name URL-escaped): one flag in full: its
    # strategies with their parameters, constraints, segments and variants,
    # the flag's own variants, and its dependencies (linked). 404 for a name
    # the loaded flags lack.
    class FlagPage < Page
      # @param client [Client]
      # @param request [Request]
      # @param name [String] the flag's name, decoded from the path
      def initialize(client, request, name)
        super(client, request)
        @name = name
        @flag = client.flag(name)
      end

      # @return [Integer] 404 when no flag has the name
      def status
        @flag ? 200 : 404
      end

      # @return [String]
      def title
        @flag ? "Flag #{@name}" : "Unknown flag"
      end

      # @return [Markup]
      def content
        return unknown unless @flag

        [tag("h1", ["Flag ", tag("code", @name, id: "flag-name"), " ", on_off(@flag[:enabled])]),
         facts(overview, id: "overview"),
         tag("p", [tag("a", "Explain an answer of this flag", href: request.href("/explain", "flag" => @name))]),
         tag("h2", "Strategies"), strategies,
         tag("h2", "Variants of the flag"), variants_table(@flag[:variants], "flag-variants"),
         tag("h2", "Dependencies"), dependencies]
      end

      private

      def unknown
        [tag("h1", "404 Not found"),
         tag("p", ["No flag named ", tag("code", @name), " is loaded in this process."], class: "message",
                                                                                         id: "message"),
         tag("p", [tag("a", "All flags", href: request.href("/flags"))])]
      end

      def overview
        c = client.counts[@name] || {}
        variants = variant_counts(c[:variants])
        [["switched", on_off(@flag[:enabled])], ["type", @flag[:type]], ["project", @flag[:project]],
         ["impression data", yes_no(@flag[:impression_data])],
         ["evaluations here since the last report",
          "yes #{c[:yes] || 0}, no #{c[:no] || 0}#{"; variants #{variants}" if variants}"]]
      end

      def strategies
        list = @flag[:strategies].to_a
        if list.empty?
          return tag("p", "None: when switched on, the flag is on for everyone.", class: "muted", id: "strategies")
        end

        summaries = @flag[:summary].to_a
        tag("div", list.map { |s| strategy(s, summaries[s[:index]]) }, id: "strategies")
      end

      def strategy(strategy, summary)
        tag("section", [
              tag("h3", "Strategy #{strategy[:index].to_i + 1}: #{strategy[:name]}"),
              summary ? tag("p", summary, class: "muted") : nil,
              facts([["parameters", data(strategy[:parameters].to_h)]]),
              tag("h3", "Constraints"), constraints_table(strategy[:constraints]),
              tag("h3", "Segments"), segments(strategy[:segments]),
              tag("h3", "Variants"), variants_table(strategy[:variants], nil)
            ], class: "strategy", id: "strategy-#{strategy[:index]}")
      end

      def segments(segments)
        return tag("p", "None.", class: "muted") if segments.nil? || segments.empty?

        segments.map do |segment|
          body = if segment[:constraints].nil?
                   tag("p", "This segment is missing from the payload: the strategy never matches.",
                       class: "message")
                 else
                   constraints_table(segment[:constraints])
                 end
          tag("div", [tag("h4", "Segment #{segment[:id]}"), body], class: "segment")
        end
      end

      def variants_table(variants, id)
        return tag("p", "None.", class: "muted", id: id) if variants.nil? || variants.empty?

        total = variants.sum { |v| v[:weight].to_i }
        rows = variants.map do |v|
          [tag("code", v[:name]), weight(v[:weight], total), v[:stickiness], payload(v[:payload]),
           overrides(v[:overrides])]
        end
        table(%w[name weight stickiness payload overrides], rows, id: id, class: "variants")
      end

      def weight(value, total)
        return value.to_s unless total.positive?

        format("%<w>s (%<p>.1f%%)", w: value, p: value.to_f * 100 / total)
      end

      def overrides(overrides)
        return tag("span", "none", class: "muted") if overrides.nil? || overrides.empty?

        lines(overrides.map { |o| "#{o[:context_name]} in #{o[:values].to_a.join(", ")}" })
      end

      def dependencies
        deps = @flag[:dependencies].to_a
        return tag("p", "None.", class: "muted", id: "dependencies") if deps.empty?

        rows = deps.map do |d|
          name = d[:found] ? flag_link(d[:feature]) : join(tag("code", d[:feature]), " (not loaded)")
          [name, d[:enabled] == false ? "off" : "on", values_list(d[:variants])]
        end
        table(["flag", "must be", "with variant"], rows, id: "dependencies")
      end
    end
  end
end
