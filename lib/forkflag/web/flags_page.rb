# frozen_string_literal: true

require_relative "page"

module Forkflag
  class Web
    # "/flags": every flag (or those whose name contains the search, `?q=`,
    # ignoring case): on/off, its strategies one line each, its variants,
    # and this process's yes/no counts since its last metrics report.
    class FlagsPage < Page
      # @return [String]
      def title
        "Flags"
      end

      # @return [Markup]
      def content
        query = request["q"]
        all = client.flags
        shown = query.empty? ? all : all.select { |f| f[:name].downcase.include?(query.downcase) }
        [tag("h1", "Flags"), search_form(query), summary(shown.size, all.size, query), flags_table(shown)]
      end

      private

      def search_form(query)
        tag("form", [
              tag("label", "Search names ", for: "q"),
              void("input", type: "search", name: "q", id: "q", value: query, placeholder: "part of a name"),
              " ", tag("button", "Search", type: "submit"),
              query.empty? ? nil : [" ", tag("a", "clear", href: request.href("/flags"))]
            ], method: "get", action: request.href("/flags"), class: "search", role: "search")
      end

      def summary(shown, total, query)
        text = if query.empty?
                 "#{total} flag#{"s" unless total == 1} loaded in this process."
               else
                 "#{shown} of #{total} flags have a name containing “#{query}”."
               end
        tag("p", text, id: "summary")
      end

      def flags_table(flags)
        return tag("p", "No flag to show.", class: "muted") if flags.empty?

        counts = client.counts
        rows = flags.map do |flag|
          c = counts[flag[:name]] || {}
          [flag_link(flag[:name]), on_off(flag[:enabled]), lines(flag[:summary]), variant_names(flag),
           c[:yes] || 0, c[:no] || 0]
        end
        table(["name", "on/off", "strategies", "variants", "yes", "no"], rows, id: "flags")
      end

      # Each variant once: the flag's own, then its strategies'.
      def variant_names(flag)
        variants = flag[:variants].to_a + flag[:strategies].to_a.flat_map { |s| s[:variants].to_a }
        names = variants.map { |v| v[:name] }.uniq
        values_list(names)
      end
    end
  end
end
