# frozen_string_literal: true

module Forkflag
  # The argument checks of the public Ruby API, in one place. Each check
  # raises TypeError or ArgumentError naming the argument and what was
  # expected, whatever the object: it asks its questions through
  # {Untrusted}, and calls none of the object's methods except the
  # conversion the check is about (`to_str`, `to_path`, `to_f`), whose own
  # exception then escapes as it is. Text arguments: arguments/text.rb.
  #
  # @api private
  module Arguments
    # Largest number of seconds an option or a timeout takes (about 31
    # years); a longer timeout waits as long as this.
    MAX_SECONDS = 1_000_000_000

    # Largest Integer option (bytes).
    MAX_INTEGER = (2**63) - 1

    module_function

    # A positive number of seconds (an option such as :refresh_interval).
    # @param what [String] the argument, as the message names it ("option :timeout")
    # @return [Numeric] the number (an Integer or a Float as given; another
    #   Numeric as a Float)
    def seconds(value, what)
      number = float(value, what) { "a positive number of seconds" }
      unless number.positive? && number <= MAX_SECONDS
        raise ArgumentError, "#{what} must be a positive number of seconds (at most #{MAX_SECONDS}), " \
                             "got #{Untrusted.describe(value)}"
      end

      Untrusted.kind?(value, Integer) || Untrusted.kind?(value, Float) ? value : number
    end

    # A timeout in seconds: zero or more; longer than {MAX_SECONDS}
    # (Float::INFINITY included) waits {MAX_SECONDS}.
    # @param allow_nil [Boolean] whether nil (no bound) is accepted
    # @return [Float, nil]
    def timeout(value, what, allow_nil: false)
      return nil if allow_nil && nil.equal?(value)

      number = float(value, what) { "a number of seconds#{" or nil" if allow_nil}" }
      if number.nan? || number.negative?
        raise ArgumentError, "#{what} must be zero or more seconds, got #{Untrusted.describe(value)}"
      end

      [number, MAX_SECONDS.to_f].min
    end

    # true or false.
    def boolean(value, what)
      return value if true.equal?(value) || false.equal?(value)

      raise TypeError, "#{what} must be true or false, got #{Untrusted.describe(value)}"
    end

    # A positive Integer, at most {MAX_INTEGER}.
    def positive_integer(value, what)
      unless Untrusted.kind?(value, Integer)
        raise TypeError, "#{what} must be a positive Integer, got #{Untrusted.describe(value)}"
      end
      return value if value.positive? && value <= MAX_INTEGER

      raise ArgumentError,
            "#{what} must be a positive Integer (at most #{MAX_INTEGER}), got #{Untrusted.describe(value)}"
    end

    # A Hash (a subclass too), as it is.
    def hash_value(value, what, expected = "a Hash")
      return value if Untrusted.kind?(value, Hash)

      raise TypeError, "#{what} must be #{expected}, got #{Untrusted.describe(value)}"
    end

    # An object that responds to call.
    def callable(value, what)
      return value if Untrusted.responds_to?(value, :call)

      raise TypeError, "#{what} must respond to call, got #{Untrusted.describe(value)}"
    end

    # A fraction: a number from 0 to 1 (a Float is returned).
    def fraction(value, what)
      number = float(value, what) { "a number from 0 to 1" }
      unless number >= 0 && number <= 1
        raise ArgumentError, "#{what} must be a number from 0 to 1 (a fraction of evaluations), " \
                             "got #{Untrusted.describe(value)}"
      end

      number
    end

    # A Float for any Numeric (its own to_f for other Numerics); the block
    # names what was expected.
    def float(value, what)
      unless Untrusted.kind?(value, Numeric)
        raise TypeError, "#{what} must be #{yield}, got #{Untrusted.describe(value)}"
      end
      return value if Untrusted.kind?(value, Float)

      begin
        Float(value)
      rescue TypeError, RangeError, ArgumentError
        raise TypeError, "#{what} must be #{yield}, got #{Untrusted.describe(value)} that has no Float value"
      end
    end
    private_class_method :float
  end
end

require_relative "arguments/text"
