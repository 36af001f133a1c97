# frozen_string_literal: true

require "securerandom"
require "tempfile"

RSpec.describe Forkflag::Client do
  include FlagPayloads

  let(:json) do
    payload(
      flag("on"),
      flag("off", enabled: false),
      flag("half", strategies: [rollout(50, stickiness: "userId", group_id: "half")]),
      flag("pro-only", strategies: [{ name: "default",
                                      constraints: [constraint("plan", "IN", values: ["pro"])] }]),
      flag("banner", strategies: [rollout(100)],
                     variants: [{ name: "blue", weight: 1, stickiness: "default",
                                  payload: { type: "json", value: '{"color":"blue"}' } }]),
      flag("seen", impression_data: true)
    )
  end
  let(:client) { described_class.new(bootstrap: json) }

  describe "#enabled?" do
    it "answers for flags that are on and off" do
      expect(client.enabled?("on")).to be(true)
      expect(client.enabled?("off")).to be(false)
    end

    it "accepts Symbol names" do
      expect(client.enabled?(:on)).to be(true)
    end

    it "answers default: for a flag the configuration lacks, and false without it" do
      expect(client.enabled?("missing")).to be(false)
      expect(client.enabled?(:missing, {}, default: true)).to be(true)
      expect(client.enabled?("off", {}, default: true)).to be(false)
    end

    it "reads context keys as Symbols or Strings, snake_case or camelCase" do
      ids = (1..200).map(&:to_s)
      reference = ids.map { |id| client.enabled?("half", { userId: id }) }
      expect(reference.count(true)).to be_between(60, 140)
      expect(ids.map { |id| client.enabled?("half", { "userId" => id }) }).to eq(reference)
      expect(ids.map { |id| client.enabled?("half", { user_id: id }) }).to eq(reference)
      expect(ids.map { |id| client.enabled?("half", { "user_id" => id }) }).to eq(reference)
      expect(ids.map { |id| client.enabled?("half", { user_id: id.to_i }) }).to eq(reference)
    end

    it "reads a field given twice from its camelCase Symbol, then its snake_case Symbol, then a String key" do
      on, off = (1..200).map(&:to_s).partition { |id| client.enabled?("half", { userId: id }) }.map(&:first)
      expect([on, off]).to all(be_a(String))
      expect(client.enabled?("half", { "userId" => off, user_id: off, userId: on })).to be(true)
      expect(client.enabled?("half", { "userId" => on, userId: off, user_id: on })).to be(false)
      expect(client.enabled?("half", { "userId" => off, user_id: on })).to be(true)
      expect(client.enabled?("half", { "user_id" => on, user_id: off })).to be(false)
      # Among String keys alone, the last one wins.
      expect(client.enabled?("half", { "user_id" => off, "userId" => on })).to be(true)
      expect(client.enabled?("half", { "userId" => on, "user_id" => off })).to be(false)
    end

    it "reads custom fields from properties, or at the top level" do
      expect(client.enabled?("pro-only", { properties: { plan: "pro" } })).to be(true)
      expect(client.enabled?("pro-only", { "properties" => { "plan" => "pro" } })).to be(true)
      expect(client.enabled?("pro-only", { plan: "pro" })).to be(true)
      expect(client.enabled?("pro-only", { properties: { plan: "free" } })).to be(false)
      expect(client.enabled?("pro-only", { properties: { plan: :pro } })).to be(true)
    end

    it "reads a custom field given as both a Symbol and a String key from the Symbol" do
      expect(client.enabled?("pro-only", { properties: { "plan" => "free", plan: "pro" } })).to be(true)
      expect(client.enabled?("pro-only", { properties: { plan: "free", "plan" => "pro" } })).to be(false)
      expect(client.enabled?("pro-only", { "plan" => "free", plan: "pro" })).to be(true)
    end

    it "reads a custom field whose Symbol did not exist at the first evaluation, and one made at run time" do
      name = "tier_#{SecureRandom.hex(8)}" # no Symbol of this name exists yet
      client = described_class.new(bootstrap: payload(
        flag("gold", strategies: [{ name: "default", constraints: [constraint(name, "IN", values: ["gold"])] }])
      ))
      expect(Symbol.all_symbols.map(&:to_s)).not_to include(name)
      expect(client.enabled?("gold", { properties: { name => "gold" } })).to be(true)
      expect(client.enabled?("gold", { properties: { name => "lead" } })).to be(false)
      # The Symbol is made now, dynamically: found by the scan, then by lookup.
      1100.times { expect(client.enabled?("gold", { properties: { name.to_sym => "gold" } })).to be(true) }
      GC.start
      expect(client.enabled?("gold", { properties: { name.to_sym => "gold", name => "lead" } })).to be(true)
      expect(client.enabled?("gold", { name.to_sym => "gold" })).to be(true)
      expect(client.enabled?("gold", { properties: { other: "gold" } })).to be(false)
    end

    it "treats a missing context field as absent, never raising" do
      expect(client.enabled?("pro-only")).to be(false)
      expect(client.enabled?("pro-only", {})).to be(false)
      expect(client.enabled?("pro-only", { properties: nil })).to be(false)
      expect(client.enabled?("pro-only", { properties: "not a hash" })).to be(false)
    end

    it "takes a prebuilt Forkflag::Context" do
      ctx = Forkflag::Context.new(user_id: "42", properties: { plan: "pro" })
      expect(client.enabled?("pro-only", ctx)).to be(true)
      expect(client.enabled?("half", ctx)).to eq(client.enabled?("half", { userId: "42" }))
    end

    it "raises TypeError naming a wrong name or context" do
      expect { client.enabled?(42) }.to raise_error(TypeError, /flag name must be a String or Symbol, got 42/)
      # Special values too, whatever the client has remembered.
      client.enabled?("on")
      [false, nil, true].each do |name|
        expect { client.enabled?(name) }.to raise_error(TypeError, /flag name must be a String or Symbol, got #{name}/)
        expect { client.enabled?(name, {}) }.to raise_error(TypeError, /got #{name}/)
        expect { client.variant(name) }.to raise_error(TypeError, /got #{name}/)
      end
      expect { client.enabled?("on", 7) }.to raise_error(TypeError, /context must be a Hash.*got 7/)
      expect { client.enabled?("on", [1]) }.to raise_error(TypeError, /context/)
    end

    it "raises ArgumentError for wrong arity and unknown keywords" do
      expect { client.enabled? }.to raise_error(ArgumentError, /wrong number of arguments \(given 0, expected 1..2\)/)
      expect { client.enabled?("a", {}, {}) }.to raise_error(ArgumentError, /given 3/)
      expect { client.enabled?("on", {}, fallback: true) }.to raise_error(ArgumentError, /unknown keyword: :fallback/)
    end

    it "calls a context value's to_s, and survives one that raises" do
      odd = Object.new
      def odd.to_s = "pro"
      expect(client.enabled?("pro-only", { plan: odd })).to be(true)
      bad = Object.new
      def bad.to_s = raise("boom")
      expect(client.enabled?("pro-only", { plan: bad })).to be(false)
    end

    it "allocates no Ruby object for a Hash context" do
      ctx = { userId: "42", properties: { plan: "pro" } }
      allocations = lambda do |n|
        Allocations.of do
          n.times do
            client.enabled?("half", ctx)
            client.enabled?("pro-only", ctx)
            client.enabled?("on", ctx)
          end
        end
      end
      allocations.call(10) # warm up symbol-to-string caches
      expect(allocations.call(3000)).to eq(allocations.call(1))
    end

    it "allocates nothing with default: beyond the keywords Hash Ruby builds for any native method" do
      ctx = { userId: "42" }
      allocations = lambda do |method|
        Allocations.of { 3000.times { client.__send__(method, "on", ctx, default: true) } }
      end
      allocations.call(:enabled?) # warm up
      allocations.call(:_noop)
      expect(allocations.call(:enabled?)).to eq(allocations.call(:_noop))
    end
  end

  describe "#variant" do
    it "returns the variant with its payload" do
      v = client.variant("banner", { "user_id" => "7" })
      expect(v).to be_a(Forkflag::Variant)
      expect(v.name).to eq("blue")
      expect(v.enabled?).to be(true)
      expect(v.feature_enabled?).to be(true)
      expect(v.payload).to eq(type: "json", value: '{"color":"blue"}')
      expect(v.to_h).to eq(name: "blue", enabled: true, feature_enabled: true,
                           payload: { type: "json", value: '{"color":"blue"}' })
    end

    it "returns the disabled variant for flags without variants, off, or unknown" do
      expect(client.variant("on").to_h).to eq(name: "disabled", enabled: false, feature_enabled: true, payload: nil)
      expect(client.variant("off").to_h).to eq(name: "disabled", enabled: false, feature_enabled: false, payload: nil)
      expect(client.variant(:missing).to_h).to eq(name: "disabled", enabled: false, feature_enabled: false,
                                                  payload: nil)
    end

    it "answers frozen variants, allocating nothing for the disabled ones" do
      expect(client.variant("banner")).to be_frozen
      expect(client.variant("on")).to be_frozen.and(equal(client.variant("on", { userId: "1" })))
      expect(client.variant("off")).to equal(client.variant(:missing))
      expect(client.variant("on")).not_to equal(client.variant("off"))
      allocations = lambda do |n|
        Allocations.of { n.times { client.variant("on", nil) } }
      end
      allocations.call(10)
      expect(allocations.call(3000)).to eq(allocations.call(1))
    end

    it "rejects keywords it does not know" do
      expect { client.variant("banner", {}, default: true) }.to raise_error(ArgumentError, /unknown keyword: :default/)
    end

    it "compares by value" do
      expect(client.variant("banner", { userId: "1" })).to eq(client.variant("banner", { userId: "2" }))
      expect(Forkflag::Variant.new(name: "blue", payload: { type: "json", value: '{"color":"blue"}' }))
        .to eq(client.variant("banner"))
    end
  end

  describe "name objects" do
    # The table is direct-mapped: two objects can share a slot, so each
    # check follows the evaluation it is about.
    it "remembers the flag of a frozen String or Symbol name, not of other Strings or unknown names" do
      expect(client.__send__(:_names_remembered)).to eq(0)
      # Pairs, not a Hash: a Hash would freeze a copy of the String key.
      [["on", true], [:off, true], [+"half", false], ["missing", false], [:missing, false]].each do |name, kept|
        client.enabled?(name)
        expect(client.__send__(:_remembers?, name)).to be(kept), "#{name.inspect}: enabled?"
        client.variant(name)
        expect(client.__send__(:_remembers?, name)).to be(kept), "#{name.inspect}: variant"
      end
      expect(client.__send__(:_names_remembered)).to be_between(1, 2)
    end

    it "answers from the current configuration after an update, for the same name objects" do
      names = ["a", "b", "c", :a, :b, :c]
      client = described_class.new(bootstrap: payload(flag("a"), flag("b", enabled: false), flag("c")))
      expect(names.map { |n| client.enabled?(n) }).to eq([true, false, true] * 2)
      expect(client.__send__(:_names_remembered)).to be_between(1, 6)
      # Every flag moves to another index, "a" goes, "d" comes.
      client.update(payload(flag("d"), flag("c", enabled: false), flag("b")))
      expect(client.enabled?("unknown")).to be(false)
      expect(client.__send__(:_names_remembered)).to eq(0)
      expect(names.map { |n| client.enabled?(n) }).to eq([false, true, false] * 2)
      expect(client.enabled?("a", nil, default: true)).to be(true)
      expect(client.enabled?(:a, {}, default: true)).to be(true)
      expect(client.__send__(:_remembers?, "a")).to be(false)
      expect(client.variant("b").to_h).to include(name: "disabled", feature_enabled: true)
      expect(client.__send__(:_remembers?, "b")).to be(true)
      client.update(payload(flag("a")))
      expect(names.map { |n| client.enabled?(n) }).to eq([true, false, false] * 2)
    end

    it "never answers for a freed name object whose address another name takes" do
      client = described_class.new(bootstrap: payload(flag("on-0"), flag("off-1", enabled: false)))
      texts = %w[on-0 off-1]
      answers = Array.new(3000) do |i|
        # New objects each time: frozen Strings (not interned) and dynamic
        # Symbols, dropped at once, with collections in between so that
        # later names land where earlier ones were.
        name = i.odd? ? texts[i / 2 % 2].dup.freeze : texts[i / 2 % 2].dup.to_sym
        GC.start if (i % 10).zero?
        client.enabled?(name)
      end
      expect(answers).to eq(Array.new(3000) { |i| (i / 2).even? })
      expect(client.__send__(:_names_remembered)).to be <= 256
    end

    it "keeps remembered names in place through compaction" do
      skip "GC.compact is not supported here" unless GC.respond_to?(:verify_compaction_references)
      client = described_class.new(bootstrap: payload(flag("kept"), flag("other", enabled: false)))
      kept = "kept".dup.freeze
      other = "other".dup.freeze
      expect([client.enabled?(kept), client.enabled?(other)]).to eq([true, false])
      GC.verify_compaction_references(double_heap: true, toward: :empty)
      fresh = %w[kept other].map { |t| t.dup.freeze }
      expect([client.enabled?(kept), client.enabled?(other)]).to eq([true, false])
      expect(fresh.map { |n| client.enabled?(n) }).to eq([true, false])
    end
  end

  describe "#on_impression" do
    it "reports evaluations of flags with impression data, and only those" do
      events = []
      client.on_impression { |e| events << e }
      client.enabled?("seen", { userId: "1" })
      client.variant("seen", { userId: "2" })
      client.enabled?("on", { userId: "1" })
      expect(events.map { |e| [e[:event_type], e[:feature_name], e[:enabled]] })
        .to eq([[:is_enabled, "seen", true], [:get_variant, "seen", true]])
      expect(events.first[:context]).to eq({ userId: "1" })
      expect(events.last[:variant]).to eq("disabled")
      expect(events.map { |e| e[:event_id] }.uniq.size).to eq(2)
    end

    it "keeps answering when a listener raises, and logs it" do
      log = StringIO.new
      client = described_class.new(bootstrap: json, logger: Logger.new(log))
      client.on_impression { raise "listener bug" }
      expect(client.enabled?("seen")).to be(true)
      expect(log.string).to include("impression listener raised RuntimeError: listener bug")
    end

    it "needs a block" do
      expect { client.on_impression }.to raise_error(ArgumentError, /needs a block/)
    end
  end

  describe "sources" do
    it "loads a file" do
      Tempfile.create(["flags", ".json"]) do |f|
        f.write(json)
        f.flush
        clients = [described_class.new(file: f.path), described_class.new(file: Pathname(f.path))]
        expect(clients[0].flag_names).to eq(%w[banner half off on pro-only seen])
        expect(clients[1].enabled?("on")).to be(true)
      ensure
        clients&.each(&:close)
      end
    end

    it "raises ConfigError naming a missing file" do
      expect { described_class.new(file: "/nonexistent/flags.json") }
        .to raise_error(Forkflag::ConfigError, %r{cannot read flags file /nonexistent/flags.json: No such file})
    end

    it "raises ConfigError naming where a payload is wrong" do
      expect { described_class.new(bootstrap: "{nope") }
        .to raise_error(Forkflag::ConfigError, /bootstrap: invalid flags payload: not valid JSON/)
      bad = '{"version":2,"features":[{"name":"a","enabled":true},{"name":"b","enabled":"yes"}]}'
      expect { described_class.new(bootstrap: bad) }
        .to raise_error(Forkflag::ConfigError,
                        /at features\[1\]\.enabled: invalid type: string "yes", expected a boolean/)
      expect { described_class.new(bootstrap: "[]") }.to raise_error(Forkflag::ConfigError, /invalid flags payload/)
      expect { described_class.new(bootstrap: '{"flags":[]}') }.to raise_error(Forkflag::ConfigError, /"features"/)
    end

    it "keeps the current configuration when an update is invalid" do
      expect { client.update('{"version":2,"features":[{"name":1}]}') }
        .to raise_error(Forkflag::ConfigError, /features\[0\]\.name/)
      expect(client.enabled?("on")).to be(true)
      expect(client.update(payload(flag("new")))).to eq(1)
      expect(client.flag_names).to eq(["new"])
    end

    it "accepts the older payload shape with segment constraints inlined" do
      inlined = payload(flag("seg", strategies: [{ name: "default",
                                                   constraints: [constraint("appName", "IN", values: ["web"])] }]))
      c = described_class.new(bootstrap: inlined)
      expect(c.enabled?("seg", { appName: "web" })).to be(true)
      expect(c.enabled?("seg", { appName: "cli" })).to be(false)
    end
  end

  describe "problems in a payload" do
    it "evaluates an unknown strategy or operator to false and warns once per configuration" do
      log = StringIO.new
      odd = constraint("userId", "SOUNDS_LIKE", values: ["x"], inverted: true)
      json = payload(
        flag("custom", strategies: [{ name: "myCustomStrategy", parameters: {} }]),
        flag("custom-or-default", strategies: [{ name: "myCustomStrategy" }, { name: "default" }]),
        flag("odd-op", strategies: [{ name: "default", constraints: [odd] }])
      )
      client = described_class.new(bootstrap: json, logger: Logger.new(log))
      expect(client.enabled?("custom", { userId: "1" })).to be(false)
      expect(client.enabled?("custom-or-default", { userId: "1" })).to be(true)
      expect(client.enabled?("odd-op", { userId: "1" })).to be(false)
      expect(log.string.scan(/unknown strategy "myCustomStrategy"/).size).to eq(2)
      expect(log.string).to include('unknown constraint operator "SOUNDS_LIKE"')
      client.update(json)
      expect(log.string.scan(/unknown strategy "myCustomStrategy"/).size).to eq(2)
    end
  end

  describe "options" do
    it "rejects unknown options, naming them" do
      expect { described_class.new(bootstrap: json, refresh: 1) }
        .to raise_error(ArgumentError, /unknown option :refresh for Forkflag::Client.new/)
    end

    it "needs a source" do
      expect { described_class.new }.to raise_error(ArgumentError, /needs a source of flags/)
    end

    it "checks option types" do
      expect { described_class.new(bootstrap: 42) }.to raise_error(TypeError, /option :bootstrap must be a String/)
      expect { described_class.new(bootstrap: json, logger: "stderr") }
        .to raise_error(TypeError, /option :logger must respond to/)
    end
  end

  describe "#close" do
    it "keeps evaluating from the last configuration and is idempotent" do
      expect(client.close).to be(true)
      expect(client.close).to be(true)
      expect(client).to be_closed
      expect(client.enabled?("on")).to be(true)
    end
  end

  it "cannot be allocated without its native state" do
    expect { described_class.allocate }.to raise_error(TypeError, /allocator undefined/)
  end
end
