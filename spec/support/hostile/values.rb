# frozen_string_literal: true

require "stringio"
require_relative "objects"

# The catalogue of hostile values, one line per value: long by nature.
module Hostile # rubocop:disable Metrics/ModuleLength
  module_function

  # An object whose named methods raise HostileError.
  def raising(*names)
    object = Object.new
    names.each { |name| object.define_singleton_method(name) { |*| raise HostileError, "#{name} raised" } }
    object
  end

  # An object whose named methods return `result`.
  def returning(result, *names)
    object = Object.new
    names.each { |name| object.define_singleton_method(name) { |*| result } }
    object
  end

  def recursive_hash
    hash = {}
    hash[:properties] = hash
    hash[:self] = hash
    hash
  end

  def recursive_array
    array = []
    array << array
    array
  end

  # A Hash whose keys can only be told apart by identity (their hash and
  # eql? raise).
  def identity_hash(*keys)
    hash = {}.compare_by_identity
    keys.each { |key| hash[key] = "x" }
    hash
  end

  def far_times
    {
      "Time.at(2**64)" => Time.at(2**64), "Time.at(-2**64)" => Time.at(-(2**64)),
      "Time.at(2**62)" => Time.at(2**62), "Time.at(-2**62)" => Time.at(-(2**62)),
      "Time.at(2**63/1000 + 1)" => Time.at(((2**63) / 1000) + 1),
      "Time.at(-(2**63/1000 + 1))" => Time.at(-(((2**63) / 1000) + 1)),
      "Time.at(0)" => Time.at(0), "Time.at(2**31) (2038)" => Time.at(2**31)
    }
  end

  # Every hostile value, built once (in the test process, before the
  # children fork).
  def values
    @values ||= build_values
  end

  def build_values
    list = []
    add = lambda do |kind, label, object = nil, &builder|
      list << Value.new(label, kind, object, builder)
    end
    scalars(add)
    strings(add)
    encoded_strings(add)
    symbols(add)
    hostile_objects(add)
    collections(add)
    far_times.each { |label, time| add.call("Time far out of range", label, time) }
    others(add)
    list.freeze
  end

  def scalars(add)
    [nil, true, false].each { |v| add.call("nil, true, false", v.inspect, v) }
    { "0" => 0, "-1" => -1, "2**64" => 2**64, "2**200" => 2**200, "-2**200" => -(2**200) }
      .each { |label, v| add.call("Integer", label, v) }
    { "NaN" => Float::NAN, "Infinity" => Float::INFINITY, "-Infinity" => -Float::INFINITY, "-0.0" => -0.0,
      "Float::MAX" => Float::MAX, "5e-324" => 5e-324 }.each { |label, v| add.call("Float", label, v) }
    add.call("other Numeric", "Rational(1, 3)", Rational(1, 3))
    add.call("other Numeric", "Complex(1, 2)", Complex(1, 2))
    add.call("other Numeric", "Numeric whose conversions raise", RaisingNumber.new)
    add.call("other Numeric", "Numeric whose to_f gives a String", LyingNumber.new)
  end

  def strings(add)
    add.call("String", "empty String", +"")
    add.call("String", "frozen String", "f")
    add.call("String", "unfrozen String", +"f")
    add.call("String", "String with NUL", "a\0b")
    add.call("String", "String with CR LF", "a\r\nb: c")
  end

  def encoded_strings(add)
    add.call("huge String", "10 MB String") { ("x" * 10_000_000).freeze }
    add.call("huge String", "10 MB invalid UTF-8 String with NUL bytes") { ("\xff\0" * 5_000_000).freeze }
    add.call("invalid UTF-8 String", "invalid UTF-8 with NUL", "\xff\0\xfe".dup.force_encoding(Encoding::UTF_8))
    add.call("invalid UTF-8 String", "lone surrogate", "\xed\xa0\x80".dup.force_encoding(Encoding::UTF_8))
    add.call("binary or UTF-16 String", "binary String", "f".b)
    add.call("binary or UTF-16 String", "binary invalid", "\xff\xfe".b)
    add.call("binary or UTF-16 String", "UTF-16LE String", "f".encode(Encoding::UTF_16LE))
    add.call("binary or UTF-16 String", "UTF-16 invalid", "\x00\xd8".dup.force_encoding(Encoding::UTF_16LE))
    add.call("String subclass", "benign String subclass", PlainString.new("f"))
    add.call("String subclass", "String subclass whose methods raise", RaisingString.new("f"))
    add.call("String subclass", "frozen String subclass whose methods raise", RaisingString.new("f").freeze)
  end

  def symbols(add)
    add.call("Symbol", "static Symbol", :f)
    add.call("Symbol", "dynamic Symbol", "dyn-#{Process.pid}-#{rand(1_000_000)}".to_sym)
    add.call("Symbol", "binary Symbol", "\xff".b.to_sym)
    add.call("Symbol", "Symbol with NUL", :"a\x00b")
  end

  def hostile_objects(add)
    add.call("BasicObject", "BasicObject", BasicObject.new)
    add.call("BasicObject", "BasicObject whose missing methods raise", Ghost.new)
    %i[to_s to_str to_h to_hash to_path to_sym hash eql? == inspect respond_to? to_proc].each do |name|
      add.call("object whose conversion or comparison raises", "#{name} raises", raising(name))
    end
    add.call("object whose conversion or comparison raises", "every conversion raises",
             raising(:to_s, :to_str, :to_h, :to_hash, :to_path, :to_sym, :inspect, :to_proc, :to_ary))
    add.call("object whose conversion returns the wrong type", "to_str gives an Integer", returning(5, :to_str))
    add.call("object whose conversion returns the wrong type", "to_str gives nil", returning(nil, :to_str))
    add.call("object whose conversion returns the wrong type", "to_s gives an Integer", returning(5, :to_s))
    add.call("object whose conversion returns the wrong type", "to_path gives an Integer", returning(5, :to_path))
    add.call("object whose conversion returns the wrong type", "to_hash gives an Array",
             returning([1], :to_hash, :to_h))
    add.call("object whose conversion returns the wrong type", "inspect gives an Integer",
             returning(5, :inspect))
  end

  def collections(add)
    add.call("Hash", "empty Hash", {})
    add.call("Hash", "frozen Hash", { user_id: "1" }.freeze)
    add.call("Hash", "Hash with a default proc that raises", Hash.new { raise HostileError, "default proc" })
    add.call("Hash", "Hash subclass whose readers raise", RaisingHash.new.tap { |h| h.store(:user_id, "1") })
    add.call("Hash", "recursive Hash", recursive_hash)
    add.call("Hash", "Hash with 100k keys") { (0...100_000).to_h { |i| ["k#{i}", i] } }
    add.call("Hash", "Hash with hostile values",
             { userId: raising(:to_s), properties: { plan: Ghost.new }, currentTime: raising(:to_s) })
    add.call("Hash", "Hash with hostile keys",
             identity_hash(BasicObject.new, raising(:hash, :eql?, :to_s, :to_sym), RaisingString.new("k")))
    add.call("Array", "recursive Array", recursive_array)
    add.call("Array", "Array of 100k elements") { Array.new(100_000) { |i| i } }
  end

  def others(add)
    add.call("Proc", "Proc", proc { |*| })
    add.call("Proc", "lambda that raises", ->(*) { raise HostileError, "lambda" })
    add.call("Thread", "current Thread", Thread.current)
    add.call("Thread", "dead Thread", Thread.new { nil }.tap(&:join))
    add.call("IO", "StringIO", StringIO.new("x"))
    add.call("IO", "pipe reader", IO.pipe.first)
    add.call("IO", "closed File", File.open(File::NULL).tap(&:close))
    add.call("Class or Module", "Object (a Class)", Object)
    add.call("Class or Module", "anonymous Module", Module.new)
  end
end
