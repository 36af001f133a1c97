# frozen_string_literal: true

require "cgi"

module Forkflag
  class Web
    # HTML that is already escaped. Everything the pages put into HTML goes
    # through {Html.h}, which escapes any other value and passes Markup
    # through unchanged, so a value from the flags payload or the request can
    # only ever appear as text.
    class Markup < String; end

    # The one escaping helper and the element builders the pages use. Every
    # content part and every attribute value goes through {h}.
    module Html
      module_function

      # Escapes a value for HTML text or a double-quoted attribute.
      #
      # @param value [Object] a Markup (returned as is), an Array (each part
      #   escaped, then joined), nil (empty), or anything else (its to_s,
      #   invalid bytes replaced, escaped)
      # @return [Markup]
      def h(value)
        case value
        when Markup then value
        when nil then Markup.new
        when Array then Markup.new(value.map { |part| h(part) }.join)
        else Markup.new(CGI.escapeHTML(text(value)))
        end
      end

      # An element: `tag("td", "x<y", class: "n")` is `<td class="n">x&lt;y</td>`.
      #
      # @param name [String] the element (a literal of the page, never a value)
      # @param content [Object] what goes inside, escaped by {h}
      # @param attributes [Hash{Symbol=>Object}] attribute values, escaped;
      #   true gives a bare attribute, nil or false leaves it out
      # @return [Markup]
      def tag(name, content = nil, **attributes)
        Markup.new("<#{name}#{attributes_of(attributes)}>#{h(content)}</#{name}>")
      end

      # An element without content or end tag (input, link, meta).
      #
      # @param name [String]
      # @param attributes [Hash{Symbol=>Object}] escaped as in {tag}
      # @return [Markup]
      def void(name, **attributes)
        Markup.new("<#{name}#{attributes_of(attributes)}>")
      end

      # Joins parts, each escaped by {h}.
      #
      # @param parts [Array<Object>]
      # @return [Markup]
      def join(*parts)
        h(parts.flatten(1))
      end

      # A value as UTF-8 text (invalid bytes replaced).
      #
      # @param value [Object]
      # @return [String]
      def text(value)
        string = value.to_s
        string = string.dup.force_encoding(Encoding::UTF_8) unless string.encoding == Encoding::UTF_8
        string.valid_encoding? ? string : string.scrub("\u{FFFD}")
      end

      def attributes_of(attributes)
        attributes.filter_map do |key, value|
          next if value.nil? || value == false

          name = key.to_s.tr("_", "-")
          value == true ? " #{name}" : " #{name}=\"#{h(value)}\""
        end.join
      end
      private_class_method :attributes_of
    end
  end
end
