# frozen_string_literal: true

# Every native method, called under GC.stress (rake spec:gc_stress) and from
# several threads at once: a mishandled Ruby object crashes here.
RSpec.describe "native methods under stress", :gc_stress do
  include FlagPayloads

  # Under GC.stress every allocation runs a full collection: keep the counts small.
  rounds = ENV["FORKFLAG_GC_STRESS"] == "1" ? 2 : 20

  let(:json) do
    payload(
      flag("a", strategies: [rollout(50, stickiness: "default", group_id: "a",
                                         constraints: [constraint("plan", "STR_STARTS_WITH", values: ["PR"],
                                                                                             case_insensitive: true)])],
                variants: [{ name: "x", weight: 1, payload: { type: "string", value: "v" } },
                           { name: "y", weight: 1 }],
                impression_data: true),
      flag("b", strategies: [{ name: "userWithId", parameters: { userIds: "1,2,3" } }])
    )
  end

  def exercise(client, index)
    ctx = Forkflag::Context.new(user_id: index.to_s, current_time: Time.utc(2024, 5, 1, 12, 0, index),
                                properties: { plan: "pro#{index}" })
    hash = { "userId" => index, :properties => { plan: "Pro" }, "currentTime" => "2024-05-01T12:00:00Z", 3 => 4 }
    [
      client.enabled?("a", hash), client.enabled?(:b, ctx), client.enabled?("zz", nil, default: true),
      client.variant("a", hash).to_h, client.variant(:a, ctx).payload, client.flag_names,
      client.explain("a", hash).to_s, client.explain(:b, ctx).to_h, client.flags, client.flag(:a),
      client.counts.size <= 3, ctx.to_h, ctx.properties
    ]
  end

  it "survives every native method" do
    client = Forkflag::Client.new(bootstrap: json)
    seen = 0
    client.on_impression { |_e| seen += 1 }
    rounds.times { |i| exercise(client, i) }
    client.update(json)
    expect { client.update("{") }.to raise_error(Forkflag::ConfigError)
    expect(Forkflag::Variant.new(name: "x", payload: { type: "string", value: "v" }).payload)
      .to eq(type: "string", value: "v")
    expect(seen).to be > 0
  end

  it "survives events: changes and errors made natively, delivered from the log queue, and sampled evaluations" do
    client = Forkflag::Client.new(bootstrap: json, instrument_evaluations: 1.0, logger: Logger.new(nil))
    changes = []
    client.on_change { |change| changes << change.to_h }
    client.on_error { |error| changes << error.to_h }
    client.__send__(:_events=, true)
    expect(client.__send__(:_impression_flags?)).to be(true)
    rounds.times { |i| exercise(client, i) }
    client.update(payload(flag("a"), flag("c")))
    client.update(json)
    # Delivered by the log thread: a bounded wait for both.
    deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + 30
    sleep 0.01 until changes.size >= 2 || Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline
    client.close
    expect(changes.map { |c| c[:added] }).to include(["c"], ["b"])
  end

  it "answers the same from several threads at once" do
    client = Forkflag::Client.new(bootstrap: json)
    expected = (0...rounds).map { |i| exercise(client, i) }
    threads = Array.new(4) do
      Thread.new { (0...rounds).map { |i| exercise(client, i) } }
    end
    # Bounded, and generous: under GC.stress the four threads share one
    # GVL and each takes four times the single run above, or more on a
    # busy machine.
    deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + 600
    results = threads.map do |t|
      t.join([deadline - Process.clock_gettime(Process::CLOCK_MONOTONIC), 0].max) && t.value
    end
    expect(results).to all(eq(expected))
  end

  it "survives custom strategies: the call into Ruby, its parameters and context, and a strategy that raises" do
    custom = payload(
      flag("c", strategies: [{ name: "tenant", parameters: { tenants: "a,b" },
                               variants: [{ name: "x", weight: 1, stickiness: "default" }] }]),
      flag("r", strategies: [{ name: "raising" }, { name: "tenant", parameters: { tenants: "a" } }])
    )
    strategies = {
      "tenant" => ->(parameters, context) { parameters["tenants"].split(",").include?(context.properties[:tenant]) },
      "raising" => ->(_parameters, context) { raise ArgumentError, context.to_s }
    }
    client = Forkflag::Client.new(bootstrap: custom, strategies: strategies, logger: Logger.new(nil))
    answers = Array.new(rounds) do |i|
      ctx = Forkflag::Context.new(user_id: i.to_s, properties: { tenant: "a" })
      [client.enabled?("c", { tenant: "a", "userId" => i }), client.enabled?("c", ctx), client.enabled?("c"),
       client.variant("c", ctx).name, client.enabled?("r", { properties: { tenant: "a" } })]
    end
    expect(answers).to all(eq([true, true, false, "x", true]))
    client.close
  end
end
