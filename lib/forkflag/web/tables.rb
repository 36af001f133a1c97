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
    end
  end
end
