# frozen_string_literal: true

# Client#explain, #flags, #flag and #counts: explanations that agree with
# enabled? and variant, count nothing, and show each step.
RSpec.describe "Forkflag::Client#explain" do
  quiet = Logger.new(IO::NULL)

  payload = {
    version: 2,
    segments: [{ id: 7, constraints: [{ contextName: "plan", operator: "IN", values: %w[pro team] }] }],
    features: [
      { name: "off", enabled: false, strategies: [{ name: "default" }] },
      { name: "everyone", enabled: true, strategies: [] },
      { name: "ids", enabled: true, strategies: [{ name: "userWithId", parameters: { userIds: "a, b" } }] },
      { name: "rollout", enabled: true, impressionData: true,
        strategies: [
          { name: "userWithId", parameters: { userIds: "vip" } },
          { name: "flexibleRollout", parameters: { rollout: "50", stickiness: "default", groupId: "g" },
            constraints: [
              { contextName: "country", operator: "STR_STARTS_WITH", values: ["N"], caseInsensitive: true },
              { contextName: "version", operator: "SEMVER_GT", value: "1.2.3" }
            ],
            segments: [7],
            variants: [{ name: "blue", weight: 500, stickiness: "default", payload: { type: "string", value: "b" } },
                       { name: "red", weight: 500, stickiness: "default" }] }
        ] },
      { name: "overridden", enabled: true, strategies: [{ name: "default" }],
        variants: [
          { name: "x", weight: 1000, stickiness: "default", overrides: [{ contextName: "userId", values: ["z"] }] },
          { name: "z", weight: 0, stickiness: "default", overrides: [{ contextName: "userId", values: ["u-z"] }] }
        ] },
      { name: "child", enabled: true, strategies: [{ name: "default" }],
        dependencies: [{ feature: "ids" }, { feature: "off", enabled: false }] },
      { name: "orphan", enabled: true, strategies: [{ name: "default" }], dependencies: [{ feature: "gone" }] },
      { name: "operators", enabled: true, strategies: [{
        name: "default",
        constraints: [
          { contextName: "n", operator: "NUM_GTE", value: "2.5" },
          { contextName: "currentTime", operator: "DATE_AFTER", value: "2024-01-01T00:00:00.000Z" },
          { contextName: "email", operator: "REGEX", value: "@example\\.com$", caseInsensitive: true },
          { contextName: "remoteAddress", operator: "IN_CIDR", values: ["10.0.0.0/8"] },
          { contextName: "plan", operator: "NOT_IN", values: ["free"], inverted: true },
          { contextName: "x", operator: "NO_SUCH_OPERATOR", values: ["1"] }
        ]
      }] },
      { name: "<b>odd</b>", enabled: true, strategies: [{ name: "mystery", parameters: { a: "1" } }] }
    ]
  }
  json = JSON.generate(payload)

  let(:client) { Forkflag::Client.new(bootstrap: json, logger: quiet) }

  after { client.close(timeout: 1) }

  def steps(explanation)
    explanation.strategies.map { |s| [s[:name], s[:evaluated], s[:matched]] }
  end

  it "gives each reason" do
    expect(client.explain("nope").reason).to eq(:not_found)
    expect(client.explain("nope").found?).to be(false)
    expect(client.explain("off").reason).to eq(:disabled)
    expect(client.explain("everyone").reason).to eq(:no_strategies)
    expect(client.explain("ids", { userId: "a" }).reason).to eq(:strategy_matched)
    expect(client.explain("ids", { userId: "c" }).reason).to eq(:no_strategy_matched)
    expect(client.explain("child", { userId: "c" }).reason).to eq(:dependency_failed)
    expect(client.explain("child", { userId: "b" }).reason).to eq(:strategy_matched)
  end

  it "shows the strategy that matched, each constraint and segment with the value it read" do
    ctx = { userId: "u7", properties: { country: "no", version: "1.3.0", plan: "pro" } }
    e = client.explain("rollout", ctx)
    expect(e.enabled?).to eq(client.enabled?("rollout", ctx))
    expect(steps(e).first).to eq(["userWithId", true, false])
    rollout = e.strategies[1]
    expect(rollout[:parameters]).to eq("rollout" => "50", "stickiness" => "default", "groupId" => "g")
    expect(rollout[:constraints].map { |c| [c[:context_name], c[:operator], c[:context_value], c[:result]] })
      .to eq([["country", "STR_STARTS_WITH", "no", true], ["version", "SEMVER_GT", "1.3.0", true]])
    expect(rollout[:constraints].first[:case_insensitive]).to be(true)
    expect(rollout[:segments]).to eq([{ id: 7, found: true, result: true,
                                        constraints: [{ context_name: "plan", operator: "IN", values: %w[pro team],
                                                        case_insensitive: false, inverted: false,
                                                        context_value: "pro", result: true }] }])
    expect(rollout[:rollout]).to include(stickiness: "default", context_name: "userId", value: "u7",
                                         percentage: 50, group_id: "g")
    expect(rollout[:rollout][:bucket]).to be_between(1, 100)
    expect(rollout[:matched]).to eq(rollout[:rollout][:bucket] <= 50)
  end

  it "stops at the strategy that matched, as the evaluation does" do
    e = client.explain("rollout", { userId: "vip" })
    expect(e.reason).to eq(:strategy_matched)
    expect(e.strategy).to eq(index: 0, name: "userWithId", parameters: { "userIds" => "vip" })
    expect(steps(e)).to eq([["userWithId", true, true], ["flexibleRollout", false, nil]])
    expect(e.variant_trace).to be_nil
  end

  it "says how the variant was chosen: by bucket, or by an override" do
    found = (1..200).map { |i| { userId: "user-#{i}", properties: { country: "NZ", version: "2.0.0", plan: "team" } } }
                    .find { |ctx| client.enabled?("rollout", ctx) }
    e = client.explain("rollout", found)
    expect(e.variant).to eq(client.variant("rollout", found))
    t = e.variant_trace
    expect(t).to include(source: "strategy", stickiness: "default", context_name: "userId", value: found[:userId],
                         total_weight: 1000, override: nil,
                         weights: [{ name: "blue", weight: 500 }, { name: "red", weight: 500 }])
    expect(e.variant.name).to eq(t[:bucket] <= 500 ? "blue" : "red")

    o = client.explain("overridden", { userId: "u-z" })
    expect(o.variant.name).to eq("z")
    expect(o.variant_trace[:override]).to eq(variant: "z", context_name: "userId", value: "u-z")
    expect(o.variant_trace[:source]).to eq("flag")
  end

  it "shows each dependency with the parent's answer" do
    e = client.explain("child", { userId: "a" })
    expect(e.dependencies).to eq([
                                   { feature: "ids", found: true, expected_enabled: true, expected_variants: [],
                                     enabled: true, variant: "disabled", met: true },
                                   { feature: "off", found: true, expected_enabled: false, expected_variants: [],
                                     enabled: false, variant: "disabled", met: true }
                                 ])
    orphan = client.explain("orphan")
    expect(orphan.reason).to eq(:dependency_failed)
    expect(orphan.dependencies.first).to include(feature: "gone", found: false, met: false)
  end

  it "counts nothing and fires no impression" do
    events = []
    client.on_impression { |event| events << event }
    50.times { |i| client.explain("rollout", { userId: i.to_s }) }
    client.explain("nope")
    expect(client.counts).to eq({})
    expect(events).to be_empty
    client.enabled?("rollout", { userId: "vip" })
    client.variant("ids", { userId: "a" })
    expect(client.counts).to eq("rollout" => { yes: 1, no: 0, variants: {} },
                                "ids" => { yes: 1, no: 0, variants: { "disabled" => 1 } })
    expect(events.size).to eq(1)
  end

  it "is frozen plain data, with readable lines" do
    e = client.explain("child", { userId: "z" })
    expect(e).to be_frozen
    plain = ->(v) { [Hash, Array, String, Symbol, Integer, Float, TrueClass, FalseClass, NilClass].include?(v.class) }
    walk = lambda do |v|
      expect(plain.call(v)).to be(true), "#{v.class} in to_h"
      v.each { |x| walk.call(x) } if v.is_a?(Array)
      v.each_pair { |k, x| [k, x].each { |y| walk.call(y) } } if v.is_a?(Hash)
    end
    walk.call(e.to_h)
    expect(e.to_h).to include(name: "child", enabled: false, reason: :dependency_failed,
                              variant: { name: "disabled", enabled: false, feature_enabled: false, payload: nil })
    expect(e.to_s).to eq(<<~TEXT.chomp)
      "child": disabled: a flag it depends on did not answer as required
        depends on "ids" (enabled): disabled, variant "disabled": not met
        depends on "off" (disabled): disabled, variant "disabled": met
        strategy 1 default: not evaluated
    TEXT
    expect(e.inspect)
      .to eq('#<Forkflag::Explanation "child" enabled=false reason=dependency_failed variant="disabled">')
  end

  it "reads a Forkflag::Context, and Symbol names" do
    ctx = Forkflag::Context.new(user_id: "a")
    expect(client.explain(:ids, ctx).enabled?).to be(true)
    expect(client.explain(:ids, ctx).strategies.first[:kind]).to eq(matched: true, context_name: "userId",
                                                                    context_value: "a")
  end

  it "raises for a bad name or context, naming it" do
    expect { client.explain(42) }.to raise_error(TypeError, /flag name must be a String or Symbol, got 42/)
    expect { client.explain("ids", 42) }
      .to raise_error(TypeError, /context must be a Hash, a Forkflag::Context or nil/)
    expect do
      client.explain("operators", { currentTime: Time.at(2**64) })
    end.to raise_error(ArgumentError, /current_time/)
  end

  it "asks a custom strategy, once per strategy evaluated" do
    asked = []
    strategy = lambda do |parameters, context|
      asked << [parameters, context.user_id]
      context.user_id == "yes"
    end
    custom = Forkflag::Client.new(
      bootstrap: JSON.generate(version: 2, features: [{ name: "c", enabled: true,
                                                        strategies: [{ name: "tenant", parameters: { t: "1" } }] }]),
      strategies: { "tenant" => strategy }, logger: quiet
    )
    e = custom.explain("c", { userId: "yes" })
    expect(e.reason).to eq(:strategy_matched)
    expect(e.strategy).to eq(index: 0, name: "tenant", parameters: { "t" => "1" })
    expect(custom.explain("c", { userId: "no" }).enabled?).to be(false)
    expect(asked).to eq([[{ "t" => "1" }, "yes"], [{ "t" => "1" }, "no"]])
  ensure
    custom&.close(timeout: 1)
  end

  # The core checks a large random differential (ext/forkflag_core/tests/
  # differential.rs); this one goes through the Ruby binding's contexts.
  it "agrees with enabled? and variant over random contexts" do
    rng = Random.new(Integer(ENV.fetch("FORKFLAG_EXPLAIN_SEED", Random.new_seed.to_s)) % (2**32))
    names = payload[:features].map { |f| f[:name] } + ["nope"]
    pick = ->(*options) { options[rng.rand(options.size)] }
    compared = 0
    2_000.times do
      # Always a userId: without one a default stickiness draws a random
      # number, and each evaluation draws its own.
      fields = { userId: pick.call("a", "b", "vip", "z", "u-z", "user-#{rng.rand(50)}"),
                 remoteAddress: pick.call(nil, "10.1.2.3", "192.168.0.1", "junk"),
                 properties: { country: pick.call(nil, "NO", "nz", "se"),
                               version: pick.call(nil, "1.2.3", "1.10.0", "x"),
                               plan: pick.call(nil, "pro", "free", "team"), n: pick.call(nil, "2.5", "1", "3e0"),
                               email: pick.call(nil, "A@EXAMPLE.COM", "a@example.org") }.compact }.compact
      ctx = pick.call(fields, Forkflag::Context.new(fields))
      names.each do |name|
        e = client.explain(name, ctx)
        expect([e.enabled?, e.variant.to_h]).to eq([client.enabled?(name, ctx), client.variant(name, ctx).to_h]),
                                                "#{name} #{fields}"
        compared += 1
      end
    end
    expect(compared).to eq(2_000 * names.size)
  end

  describe "#flags and #flag" do
    it "describes every flag as it is evaluated, sorted by name" do
      expect(client.flags.map { |f| f[:name] }).to eq(payload[:features].map { |f| f[:name] }.sort)
      expect(client.flags).to be_frozen
      rollout = client.flag("rollout")
      expect(rollout).to include(name: "rollout", enabled: true, impression_data: true, dependencies: [], variants: [])
      expect(rollout[:summary]).to eq(["userWithId (userIds=vip)",
                                       "flexibleRollout (groupId=g, rollout=50, stickiness=default), " \
                                       "2 constraints, 1 segment, 2 variants"])
      expect(rollout[:strategies][1][:variants].first)
        .to eq(name: "blue", weight: 500, stickiness: "default", payload: { type: "string", value: "b" }, overrides: [])
      expect(client.flag(:child)[:dependencies])
        .to eq([{ feature: "ids", enabled: true, variants: [], found: true },
                { feature: "off", enabled: false, variants: [], found: true }])
      expect(client.flag("nope")).to be_nil
      expect { client.flag(nil) }.to raise_error(TypeError, /flag name must be a String or Symbol/)
    end

    it "gives every operator back in the payload's words" do
      constraints = client.flag("operators")[:strategies].first[:constraints]
      expect(constraints.map { |c| [c[:operator], c[:values], c[:inverted], c[:case_insensitive]] }).to eq(
        [["NUM_GTE", ["2.5"], false, false], ["DATE_AFTER", ["2024-01-01T00:00:00.000Z"], false, false],
         ["REGEX", ["@example\\.com$"], false, true], ["IN_CIDR", ["10.0.0.0/8"], false, false],
         ["NOT_IN", ["free"], true, false], ["NO_SUCH_OPERATOR", [], false, false]]
      )
      expect(constraints.last[:unreadable]).to be(true)
      mystery = client.flag("<b>odd</b>")[:strategies].first
      expect(mystery[:name]).to eq("mystery")
      expect(mystery[:note]).to match(/never matches/)
    end
  end
end
