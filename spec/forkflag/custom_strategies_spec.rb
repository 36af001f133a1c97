# frozen_string_literal: true

require "logger"
require "stringio"

# Custom strategies (the strategies: option): registered Ruby code decides
# a strategy the payload names, with its constraints, segments and variants
# applied as for a built-in strategy.
RSpec.describe "custom strategies" do
  include FlagPayloads

  let(:log) { StringIO.new }
  let(:logger) { Logger.new(log) }
  let(:clients) { [] }

  after { clients.each(&:close) }

  def client(json, strategies, **options)
    c = Forkflag::Client.new(bootstrap: json, strategies: strategies, logger: logger, **options)
    clients << c
    c
  end

  def tenant_flag(name = "t", parameters: { tenants: "a,b" }, **options)
    flag(name, strategies: [{ name: "tenant", parameters: parameters, **options }])
  end

  let(:by_tenant) { ->(parameters, context) { parameters["tenants"].split(",").include?(context.properties[:tenant]) } }

  it "decides a flag by the registered strategy's answer, in every form of context" do
    c = client(payload(tenant_flag), { "tenant" => by_tenant })
    expect(c.enabled?("t", { properties: { tenant: "a" } })).to be(true)
    expect(c.enabled?("t", { "properties" => { "tenant" => "b" } })).to be(true)
    expect(c.enabled?("t", { tenant: "a" })).to be(true) # a top-level custom field
    expect(c.enabled?("t", Forkflag::Context.new(properties: { tenant: "b" }))).to be(true)
    expect(c.enabled?("t", { properties: { tenant: "c" } })).to be(false)
    expect(c.enabled?("t")).to be(false)
    expect(c.variant("t", { tenant: "a" })).to have_attributes(name: "disabled", feature_enabled?: true)
    expect(c.variant("t", { tenant: "z" })).to have_attributes(name: "disabled", feature_enabled?: false)
  end

  it "reads the answer's truthiness" do
    answers = { "nil" => nil, "false" => false, "string" => "yes", "zero" => 0, "object" => Object.new }
    strategies = answers.transform_values { |answer| ->(_p, _c) { answer } }
    json = payload(*answers.keys.map { |name| flag(name, strategies: [{ name: name }]) })
    c = client(json, strategies)
    expect(answers.keys.to_h { |name| [name, c.enabled?(name)] })
      .to eq("nil" => false, "false" => false, "string" => true, "zero" => true, "object" => true)
  end

  it "accepts callables and objects with enabled? or is_enabled?, by Hash or by name in an Array" do
    with_enabled = Class.new do
      def name = "by-enabled"
      def enabled?(parameters, _context) = parameters["on"] == "yes"
      def is_enabled?(_parameters, _context) = raise("enabled? wins over is_enabled?")
    end
    with_is_enabled = Class.new do
      def name = "by-is-enabled"
      def is_enabled?(parameters = {}, _context = nil) = parameters["on"] == "yes"
    end
    callable = Class.new { def call(parameters, _context) = parameters["on"] == "yes" }.new
    json = payload(*%w[by-enabled by-is-enabled by-call by-method].flat_map do |name|
      [flag("#{name}-on", strategies: [{ name: name, parameters: { on: "yes" } }]),
       flag("#{name}-off", strategies: [{ name: name, parameters: { on: "no" } }])]
    end)
    from_array = client(json, [with_enabled.new, with_is_enabled.new])
    from_hash = client(json, { "by-call" => callable, by_method: nil }.compact
      .merge("by-method" => method(:method_strategy)))
    expect(%w[by-enabled by-is-enabled].map { |n| [from_array.enabled?("#{n}-on"), from_array.enabled?("#{n}-off")] })
      .to eq([[true, false], [true, false]])
    expect(%w[by-call by-method].map { |n| [from_hash.enabled?("#{n}-on"), from_hash.enabled?("#{n}-off")] })
      .to eq([[true, false], [true, false]])
    expect(log.string).not_to include("raised")
  end

  def method_strategy(parameters, _context)
    parameters["on"] == "yes"
  end

  it "applies the strategy's constraints, segments and variants as for a built-in strategy" do
    json = payload(
      flag("constrained", strategies: [{ name: "tenant", parameters: { tenants: "a,b" },
                                         constraints: [constraint("userId", "IN", values: ["1"])] }]),
      flag("segmented", strategies: [{ name: "tenant", parameters: { tenants: "a" }, segments: [7] }]),
      flag("colours", strategies: [{ name: "tenant", parameters: { tenants: "a" },
                                     variants: [{ name: "blue", weight: 1000, stickiness: "default",
                                                  payload: { type: "string", value: "b" } }] },
                                   { name: "default" }]),
      segments: [{ id: 7, constraints: [constraint("plan", "IN", values: ["pro"])] }]
    )
    c = client(json, { "tenant" => by_tenant })
    expect(c.enabled?("constrained", { userId: "1", tenant: "a" })).to be(true)
    expect(c.enabled?("constrained", { userId: "2", tenant: "a" })).to be(false)
    expect(c.enabled?("constrained", { userId: "1", tenant: "c" })).to be(false)
    expect(c.enabled?("segmented", { tenant: "a", properties: { plan: "pro" } })).to be(true)
    expect(c.enabled?("segmented", { tenant: "a", properties: { plan: "free" } })).to be(false)
    expect(c.variant("colours", { tenant: "a" })).to have_attributes(name: "blue", enabled?: true)
    expect(c.variant("colours", { tenant: "x" })).to have_attributes(name: "disabled", feature_enabled?: true)
  end

  it "gives the strategy its parameters and a frozen context with the official SDK's readers" do
    seen = []
    c = client(payload(tenant_flag(parameters: { tenants: "a", b: "2" })),
               { "tenant" => ->(parameters, context) { seen << [parameters, context] } },
               app_name: "shop", environment: "production")
    now = Time.utc(2025, 1, 2, 3, 4, 5)
    c.enabled?("t", { userId: 42, session_id: "s", "remoteAddress" => "10.0.0.1", currentTime: now,
                      properties: { "plan" => "pro", tenant: "a" } })
    c.enabled?("t", Forkflag::Context.new(user_id: "7", app_name: "other"))
    c.enabled?("t")
    parameters, context = seen.first
    expect(parameters).to eq("tenants" => "a", "b" => "2")
    expect(parameters).to be_frozen
    expect(parameters.keys + parameters.values).to all(be_frozen)
    expect(context).to be_frozen
    expect(context).to have_attributes(user_id: "42", session_id: "s", remote_address: "10.0.0.1",
                                       current_time: now, app_name: "shop", environment: "production",
                                       properties: { plan: "pro", tenant: "a" })
    expect(context.properties).to be_frozen
    expect(%w[userId user_id UserId].map { |n| context.get_by_name(n) }).to eq(%w[42 42 42])
    expect(context.get_by_name("plan")).to eq("pro")
    expect { context.get_by_name("missing") }.to raise_error(KeyError)
    expect(context["missing"]).to be_nil
    expect(context.include?("plan")).to be(true)
    expect(context.include?("missing")).to be(false)
    expect(context.to_s).to start_with('<Context: user_id="42",session_id="s"')
    expect(seen[1][1]).to have_attributes(user_id: "7", app_name: "other", environment: "production")
    expect(seen[2][1]).to have_attributes(user_id: nil, app_name: "shop", properties: {})
    expect(seen[2][1].current_time).to be_a(Time)
  end

  it "evaluates a strategy that raises as false, logs it once per strategy and error class, and goes on" do
    calls = 0
    raising = lambda do |parameters, _context|
      calls += 1
      raise parameters["error"] == "type" ? TypeError : ArgumentError, "broken #{calls}"
    end
    json = payload(flag("type", strategies: [{ name: "raising", parameters: { error: "type" } }]),
                   flag("argument", strategies: [{ name: "raising", parameters: { error: "argument" } },
                                                 { name: "userWithId", parameters: { userIds: "1" } }]),
                   flag("script", strategies: [{ name: "unimplemented" }]),
                   flag("plain"))
    c = client(json, { "raising" => raising, "unimplemented" => ->(_p, _c) { raise NotImplementedError } })
    3.times do
      expect(c.enabled?("type")).to be(false)
      expect(c.enabled?("argument", { userId: "1" })).to be(true) # the next strategy still matches
      expect(c.enabled?("script")).to be(false)
      expect(c.variant("type")).to have_attributes(name: "disabled", feature_enabled?: false)
    end
    expect(c.enabled?("plain")).to be(true)
    lines = log.string.lines.grep(/custom strategy/)
    expect(lines.size).to eq(3)
    expect(lines.join).to include('"raising" raised TypeError: broken 1', '"raising" raised ArgumentError: broken 2',
                                  '"unimplemented" raised NotImplementedError')
  end

  it "lets an Interrupt (or a throw) through once the evaluation has unwound, and stays usable" do
    mode = :interrupt
    strategy = lambda do |_p, _c|
      case mode
      when :interrupt then raise Interrupt
      when :throw then throw :out, :thrown
      else true
      end
    end
    c = client(payload(tenant_flag, flag("plain")), { "tenant" => strategy })
    expect { c.enabled?("t", { tenant: "a" }) }.to raise_error(Interrupt)
    expect { c.variant("t") }.to raise_error(Interrupt)
    mode = :throw
    expect(catch(:out) { c.enabled?("t") }).to eq(:thrown)
    mode = :answer
    expect(c.enabled?("t")).to be(true)
    expect(c.enabled?("plain")).to be(true)
  end

  it "can evaluate flags of the same client from inside a strategy" do
    c = nil
    c = client(payload(tenant_flag, flag("inner")), { "tenant" => ->(_p, _ctx) { c.enabled?("inner") } })
    expect(c.enabled?("t")).to be(true)
    expect(c.variant("t").feature_enabled?).to be(true)
  end

  it "leaves an unregistered strategy off, with one warning" do
    c = client(payload(flag("other", strategies: [{ name: "elsewhere" }])), { "tenant" => by_tenant })
    expect(c.enabled?("other")).to be(false)
    expect(log.string).to include('unknown strategy "elsewhere"; it never matches (no custom strategy')
  end

  it "rejects a built-in name, a bad strategy, a bad name, a name given twice, with clear errors" do
    json = payload(tenant_flag)
    expect { client(json, { "flexibleRollout" => by_tenant }) }
      .to raise_error(ArgumentError, /"flexibleRollout" is a built-in strategy and cannot be replaced/)
    expect { client(json, { "x" => 3 }) }
      .to raise_error(TypeError, /the strategy "x" must respond to call\(parameters, context\), enabled\?/)
    expect do
      client(json, { 3 => by_tenant })
    end.to raise_error(TypeError, /strategy name must be a String or Symbol, got 3/)
    expect { client(json, { "" => by_tenant }) }.to raise_error(ArgumentError, /must not be empty/)
    expect { client(json, { "x" => by_tenant, x: by_tenant }) }.to raise_error(ArgumentError, /names "x" twice/)
    expect { client(json, [Object.new]) }.to raise_error(TypeError, /does not answer name/)
    expect { client(json, "tenant") }.to raise_error(TypeError, /option :strategies must be a Hash/)
    expect(Forkflag::Strategies::BUILT_IN).to include("default", "applicationHostname")
    expect(Forkflag::Strategies::BUILT_IN).to be_frozen
  end

  it "keeps the strategies when GC compacts, and answers in a forked child" do
    c = client(payload(tenant_flag), { "tenant" => by_tenant })
    GC.start
    GC.compact if GC.respond_to?(:compact)
    expect(c.enabled?("t", { tenant: "a" })).to be(true)
    reader, writer = IO.pipe
    pid = Forking.fork_child do
      reader.close
      writer.write(JSON.generate([c.enabled?("t", { tenant: "a" }), c.enabled?("t", { tenant: "c" }),
                                  c.variant("t", { tenant: "b" }).feature_enabled?]))
      writer.close
    end
    writer.close
    status, late = Forking.reap(pid, deadline: Forking.now + 20)
    expect([status&.success?, late]).to eq([true, false])
    expect(JSON.parse(reader.read)).to eq([true, false, true])
  end

  it "costs nothing when no strategy is registered: an empty set registers none" do
    c = client(payload(tenant_flag), {})
    expect(c.config.strategies).to be_nil
    expect(c.enabled?("t")).to be(false)
  end
end
