# frozen_string_literal: true

require_relative "markup"

module Forkflag
  class Web
    # Helpers the pages share to show plain data: tables of facts, tables
    # with headings, nested data of unknown shape, on/off and yes/no marks,
    # links to flags. Every value goes through {Html.h}. The includer has
    # #request (a {Request}) for links.
    module Tables
      include Html

      private

      # A two-column table of facts: [[label, value], ...]; values are
      # escaped (Markup kept).
      def facts(rows, **attributes)
        rows = rows.map { |label, value| tag("tr", [tag("th", label), tag("td", value.nil? ? scalar(nil) : value)]) }
        tag("table", rows, class: "facts", **attributes)
      end

      # A table with a header row.
      def table(headings, rows, **attributes)
        tag("table", [tag("thead", tag("tr", headings.map { |x| tag("th", x) })),
                      tag("tbody", rows.map { |row| tag("tr", row.map { |cell| tag("td", cell) }) })],
            **attributes)
      end

      # Plain data (Hashes, Arrays, scalars) of a shape the page does not
      # know in advance, as nested tables.
      def data(value)
        case value
        when Hash
          return tag("span", "none", class: "muted") if value.empty?

          facts(value.map { |k, v| [k.to_s.tr("_", " "), data(v)] })
        when Array
          return tag("span", "none", class: "muted") if value.empty?

          tag("ul", value.map { |v| tag("li", data(v)) }, class: "lines")
        else scalar(value)
        end
      end

      def scalar(value)
        case value
        when nil then tag("span", "–", class: "muted")
        when true then tag("span", "yes", class: "on")
        when false then tag("span", "no", class: "off")
        when Markup then value
        else tag("code", value.is_a?(Symbol) ? value.to_s : value)
        end
      end

      def on_off(enabled)
        enabled ? tag("span", "on", class: "badge on") : tag("span", "off", class: "badge off")
      end

      def yes_no(value)
        scalar(value == true)
      end

      # A list of strings, one per line.
      def lines(strings)
        return tag("span", "none", class: "muted") if strings.nil? || strings.empty?

        tag("ul", strings.map { |s| tag("li", s) }, class: "lines")
      end

      def flag_link(name)
        tag("a", name, href: request.flag_href(name), class: "flag")
      end

      def values_list(values)
        return tag("span", "none", class: "muted") if values.nil? || values.empty?

        join(values.each_with_index.map { |v, i| [i.zero? ? nil : ", ", tag("code", v)] })
      end

      # A constraint's operator, NOT before it when inverted.
      def operator(constraint)
        constraint[:inverted] ? join("NOT ", tag("code", constraint[:operator])) : tag("code", constraint[:operator])
      end

      # Constraints as a table. With +read: true+ (an explanation) also the
      # context value each one read and its result, or "not evaluated"
      # where the evaluation did not reach it.
      def constraints_table(constraints, read: false)
        return tag("p", "None.", class: "muted") if constraints.nil? || constraints.empty?

        headings = ["context field", "operator", "values", "ignore case"]
        headings += ["context value read", "result"] if read
        rows = constraints.map do |c|
          row = [tag("code", c[:context_name]), operator(c), values_list(c[:values]), yes_no(c[:case_insensitive])]
          read ? row + [scalar(c[:context_value]), result(c[:result])] : row
        end
        table(headings, rows, class: "constraints")
      end

      # A step's result: yes, no, or (nil) not evaluated.
      def result(value)
        value.nil? ? tag("span", "not evaluated", class: "muted") : yes_no(value)
      end

      # A variant's payload: its type, then its value.
      def payload(payload)
        return tag("span", "none", class: "muted") if payload.nil?

        join(tag("span", payload[:type], class: "muted"), " ", tag("code", payload[:value], class: "payload"))
      end

      # Variant counts as "name: n, ..." (nil when there are none).
      def variant_counts(variants)
        return nil if variants.nil? || variants.empty?

        variants.sort.map { |name, n| "#{name}: #{n}" }.join(", ")
      end
    end
  end
end
