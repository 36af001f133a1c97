# frozen_string_literal: true

module Forkflag
  # Questions about an object that the object itself never answers: its
  # class, whether it has a method, a short description for an error
  # message. Each is asked of the object's class or of Kernel's and the core
  # classes' own methods, so it works for any object: a BasicObject (no
  # `respond_to?`, `is_a?`, `inspect`), an object whose `inspect`, `to_s` or
  # `respond_to?` raise, a String subclass that redefines everything.
  #
  # @api private
  module Untrusted
    # Longest excerpt of a String or an Integer a description shows.
    EXCERPT_BYTES = 64

    CLASS_OF = Kernel.instance_method(:class)
    RESPOND_TO = Kernel.instance_method(:respond_to?)
    MODULE_NAME = Module.instance_method(:name)
    MODULE_TO_S = Module.instance_method(:to_s)
    STRING_INSPECT = String.instance_method(:inspect)
    STRING_BYTESIZE = String.instance_method(:bytesize)
    STRING_BYTESLICE = String.instance_method(:byteslice)
    HASH_SIZE = Hash.instance_method(:size)
    ARRAY_SIZE = Array.instance_method(:size)
    private_constant :CLASS_OF, :RESPOND_TO, :MODULE_NAME, :MODULE_TO_S, :STRING_INSPECT, :STRING_BYTESIZE,
                     :STRING_BYTESLICE, :HASH_SIZE, :ARRAY_SIZE

    module_function

    # A short description of any object for an error message, that cannot
    # raise: the value itself for nil, booleans, Symbols, numbers and
    # Strings (long ones cut); the class and size of a Hash or an Array;
    # else the object's own inspect (cut) and its class, or only its class
    # when it has no inspect, or its inspect raises or returns no String.
    #
    # @return [String]
    def describe(value)
      case value
      when nil, true, false, Float, Symbol then value.inspect
      when Integer then cut(value.to_s, "digits")
      when String then with_class(value, excerpt(value))
      when Hash then "a #{class_name(value)} of #{HASH_SIZE.bind_call(value)} entries"
      when Array then "an #{class_name(value)} of #{ARRAY_SIZE.bind_call(value)} elements"
      else with_class(value, own_inspect(value))
      end
    end

    # Whether the object is a klass (or a subclass's instance), asked of the
    # class (Module#===), never of the object.
    def kind?(value, klass)
      klass === value # rubocop:disable Style/CaseEquality
    end

    # The name of an object's class, or its description when anonymous.
    # @return [String]
    def class_name(value)
      klass = CLASS_OF.bind_call(value)
      MODULE_NAME.bind_call(klass) || MODULE_TO_S.bind_call(klass)
    end

    # Whether the object has a public method, asked through Kernel's own
    # respond_to? (a BasicObject has none; an object may redefine it).
    def responds_to?(value, method)
      RESPOND_TO.bind_call(value, method)
    end

    # A description followed by the class, unless the class is String.
    def with_class(value, text)
      return "an instance of #{class_name(value)}" unless text
      return text if CLASS_OF.bind_call(value).equal?(String)

      "#{text} (#{class_name(value)})"
    end

    # The object's own inspect, cut; nil when it has none, it raises, or
    # it returns no String.
    def own_inspect(value)
      return nil unless responds_to?(value, :inspect)

      text = value.inspect
      kind?(text, String) ? cut(text, "bytes") : nil
    rescue StandardError
      nil
    end

    # The inspected first bytes of a String, with its length when cut.
    def excerpt(text)
      size = STRING_BYTESIZE.bind_call(text)
      return STRING_INSPECT.bind_call(text) if size <= EXCERPT_BYTES

      head = STRING_BYTESLICE.bind_call(text, 0, EXCERPT_BYTES)
      "#{STRING_INSPECT.bind_call(head)}... (#{size} bytes)"
    end

    # The first bytes of a text, with its length when cut; invalid bytes
    # escaped.
    def cut(text, unit)
      size = STRING_BYTESIZE.bind_call(text)
      head = size <= EXCERPT_BYTES ? text : STRING_BYTESLICE.bind_call(text, 0, EXCERPT_BYTES)
      head = String.new(head).scrub { |bytes| bytes.unpack1("H*").then { |hex| "\\x#{hex}" } }
      size <= EXCERPT_BYTES ? head : "#{head}... (#{size} #{unit})"
    end

    private_class_method :with_class, :own_inspect, :excerpt, :cut
  end
end
