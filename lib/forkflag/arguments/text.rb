# frozen_string_literal: true

module Forkflag
  # Text arguments: Strings, paths and names, each returned as a frozen,
  # valid UTF-8 copy (never the caller's object, nor a String subclass).
  module Arguments
    # MAX_HEADER_BYTES, the longest value accepted for a String sent in a
    # request line or header, is the core's (defined by the native library).

    module_function

    # A String argument (or an object with `to_str`; another encoding is
    # converted to UTF-8), or nil for nil.
    #
    # @param what [String] the argument, as the message names it ("option :url")
    # @param header [Boolean] the value is sent in a request line or an
    #   HTTP header: no control characters, at most +MAX_HEADER_BYTES+
    # @return [String, nil]
    def string(value, what, header: false)
      return nil if nil.equal?(value)

      text = utf8(what, to_string(value, what) { "a String" })
      header ? header_text(text, what) : text
    end

    # A String, or the text of a Symbol, an Integer or a Float (a header
    # value, a payload value); nil for nil.
    # @return [String, nil]
    def text(value, what, header: false)
      value = value.to_s if [Symbol, Integer, Float].any? { |kind| Untrusted.kind?(value, kind) }
      string(value, what, header: header)
    end

    # A file path (a String, or an object with `to_path` or `to_str`), or
    # nil for nil.
    # @return [String, nil]
    def path(value, what)
      return nil if nil.equal?(value)

      if !Untrusted.kind?(value, String) && Untrusted.responds_to?(value, :to_path)
        value = value.to_path
        unless Untrusted.kind?(value, String)
          raise TypeError, "#{what}: to_path must return a String, got #{Untrusted.describe(value)}"
        end
      end
      text = utf8(what, to_string(value, what) { "a path (a String or a Pathname)" })
      raise ArgumentError, "#{what} must not contain a NUL byte, got #{Untrusted.describe(text)}" if text.include?("\0")

      text
    end

    # A String or Symbol name (a flag name, a field name).
    # @return [String]
    def name(value, what)
      value = value.name if Untrusted.kind?(value, Symbol)
      unless Untrusted.kind?(value, String)
        raise TypeError, "#{what} must be a String or Symbol, got #{Untrusted.describe(value)}"
      end

      utf8(what, value)
    end

    # The core checks a value sent in a request (its one check, also made
    # for every request); the message names the option.
    def header_text(text, what)
      case Forkflag.__send__(:_header_problem, nil, text)
      when nil then text
      when :too_long
        raise ArgumentError, "#{what} is longer than #{MAX_HEADER_BYTES} bytes, got #{Untrusted.describe(text)}"
      else
        raise ArgumentError,
              "#{what} must not contain line breaks or control characters, got #{Untrusted.describe(text)}"
      end
    end

    # A String, or the String an object's to_str returns; the block names
    # what was expected.
    def to_string(value, what)
      return value if Untrusted.kind?(value, String)

      converted = begin
        String.try_convert(value)
      rescue TypeError
        raise TypeError,
              "#{what} must be #{yield}, got #{Untrusted.describe(value)} whose to_str does not return a String"
      end
      return converted if converted

      raise TypeError, "#{what} must be #{yield}, got #{Untrusted.describe(value)}"
    end

    # A frozen UTF-8 copy of a String.
    def utf8(what, text)
      copy = String.new(text)
      if copy.encoding == Encoding::BINARY || copy.encoding == Encoding::US_ASCII
        copy.force_encoding(Encoding::UTF_8)
      elsif copy.encoding != Encoding::UTF_8
        copy = encoded(copy, what)
      end
      return copy.freeze if copy.valid_encoding?

      raise ArgumentError, "#{what} must be valid UTF-8 text, got #{Untrusted.describe(text)}"
    end

    def encoded(text, what)
      text.encode(Encoding::UTF_8)
    rescue EncodingError => e
      raise ArgumentError, "#{what} cannot be read as UTF-8 text (#{e.message}), got #{Untrusted.describe(text)}"
    end

    private_class_method :header_text, :to_string, :utf8, :encoded
  end
end
