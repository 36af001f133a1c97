# frozen_string_literal: true

module Hostile
  # What a hostile object raises: its own class, so a spec can tell it
  # apart from an exception forkflag raised.
  class HostileError < StandardError; end

  # A hostile value: its label, the kind it belongs to (the summary counts
  # per kind), and the object, or for a large one (never run under
  # GC.stress) the block that builds it where it is used: in the heap of
  # every child, it would make each collection of the stressed calls scan it.
  class Value
    attr_reader :label, :kind

    def initialize(label, kind, object, builder)
      @label = label
      @kind = kind
      @object = object
      @builder = builder
    end

    def large? = !@builder.nil?

    def object
      return @object unless @builder

      @object ||= @builder.call
    end
  end

  # A String subclass whose every method a careless check would call raises.
  class RaisingString < String
    %i[hash eql? == to_s to_str to_sym inspect strip empty? encoding dup frozen? respond_to? is_a?].each do |name|
      define_method(name) { |*| raise HostileError, "RaisingString##{name}" }
    end
  end

  # A String subclass that behaves.
  class PlainString < String; end

  # A Numeric whose conversions raise.
  class RaisingNumber < Numeric
    %i[to_f to_i to_s inspect <=> coerce positive? negative? finite? nan?].each do |name|
      define_method(name) { |*| raise HostileError, "RaisingNumber##{name}" }
    end
  end

  # A Numeric whose to_f answers a String.
  class LyingNumber < Numeric
    def to_f = "1.0"
    def coerce(other) = [other, 1]
  end

  # A BasicObject whose every missing method raises.
  class Ghost < BasicObject
    def method_missing(name, *) = ::Kernel.raise(HostileError, "Ghost##{name}")
    def respond_to_missing?(*) = ::Kernel.raise(HostileError, "Ghost#respond_to_missing?")
  end

  # A Hash subclass whose readers raise.
  class RaisingHash < Hash
    %i[[] fetch each each_pair each_key key? to_h to_hash size empty? keys].each do |name|
      define_method(name) { |*| raise HostileError, "RaisingHash##{name}" }
    end
  end
end
