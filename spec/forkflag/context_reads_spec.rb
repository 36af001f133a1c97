# frozen_string_literal: true

# What an evaluation does when reading its context runs Ruby code that
# raises or jumps (a value's to_s, a Time Ruby cannot convert, a redefined
# Symbol#eql?): the jump stops before forkflag's native frames, never
# across them, and the client stays whole afterwards.
RSpec.describe "reading a context that raises" do
  include FlagPayloads

  let(:json) do
    payload(
      flag("pro-only", strategies: [{ name: "default", constraints: [constraint("plan", "IN", values: ["pro"])] }]),
      flag("half", strategies: [rollout(50, stickiness: "userId", group_id: "half")]),
      flag("after-2024", strategies: [{ name: "default", constraints: [
             constraint("currentTime", "DATE_AFTER", value: "2024-01-01T00:00:00Z")
           ] }],
                         variants: [{ name: "later", weight: 1, stickiness: "default" }]),
      flag("before-2024", strategies: [{ name: "default", constraints: [
             constraint("currentTime", "DATE_BEFORE", value: "2024-01-01T00:00:00Z")
           ] }])
    )
  end
  let(:client) { Forkflag::Client.new(bootstrap: json) }

  # Far-away Times: seconds that fit in time_t but milliseconds that do not.
  far_future = [Time.at(2**62), Time.at(((2**63) / 1000) + 1), Time.at((2**63) - 1)]
  far_past = [Time.at(-2**62), Time.at(-((2**63) / 1000) - 1), Time.at(-2**63)]

  it "compares far-future and far-past Times as such in a Hash context, never wrapped around" do
    far_future.each do |t|
      expect([client.enabled?("after-2024", { currentTime: t }), client.enabled?("before-2024", { currentTime: t })])
        .to eq([true, false]), t.to_i.to_s
      expect(client.variant("after-2024", { current_time: t }).name).to eq("later")
    end
    far_past.each do |t|
      expect([client.enabled?("after-2024", { currentTime: t }), client.enabled?("before-2024", { currentTime: t })])
        .to eq([false, true]), t.to_i.to_s
      expect(client.variant("after-2024", { current_time: t }).feature_enabled?).to be(false)
    end
  end

  it "raises ArgumentError naming current_time for a Time beyond what Ruby converts, and stays whole" do
    name = "half" # a frozen literal: remembered by the client when its cache is free
    [Time.at(2**64), Time.at(-2**64), Time.at(2**70)].each do |t|
      expect { client.enabled?("after-2024", { currentTime: t }) }
        .to raise_error(ArgumentError, /current_time .* cannot be converted .*expected a Time/)
      expect { client.variant("after-2024", { "currentTime" => t }) }
        .to raise_error(ArgumentError, /current_time/)
    end
    # The evaluation's borrow of the client's snapshot cache was released:
    # a name evaluated now is remembered (it is not while the cache is held).
    client.enabled?(name, { userId: "1" })
    expect(client.__send__(:_remembers?, name)).to be(true)
    expect(client.enabled?("after-2024", { currentTime: Time.utc(2025) })).to be(true)
  end

  it "raises for an uninitialised Time, naming current_time" do
    expect { client.enabled?("after-2024", { currentTime: Time.allocate }) }
      .to raise_error(ArgumentError, /current_time .* cannot be converted/)
  end

  it "builds no Forkflag::Context with a Time beyond the millisecond range, naming it" do
    (far_future + far_past + [Time.at(2**64), Time.at(-2**64)]).each do |t|
      expect { Forkflag::Context.new(current_time: t) }.to raise_error(ArgumentError, /current_time/)
    end
    near = Time.at(2**40) # year 36812: within range, read back as it was given
    expect(Forkflag::Context.new(current_time: near).current_time).to eq(near)
    expect(client.enabled?("after-2024", Forkflag::Context.new(current_time: near))).to be(true)
  end

  it "goes on with a throw from a value's to_s instead of swallowing it" do
    thrower = Object.new
    def thrower.to_s = throw(:stop, :thrown)
    result = catch(:stop) do
      client.enabled?("pro-only", { plan: thrower })
      :not_thrown
    end
    expect(result).to eq(:thrown)
    expect(catch(:stop) { Forkflag::Context.new(properties: { plan: thrower }) && :not_thrown }).to eq(:thrown)
    expect(client.enabled?("pro-only", { plan: "pro" })).to be(true)
  end

  it "lets an Exception that is not a StandardError (Interrupt) through; a StandardError reads as absent" do
    interrupting = Object.new
    def interrupting.to_s = raise(Interrupt)
    expect { client.enabled?("pro-only", { plan: interrupting }) }.to raise_error(Interrupt)
    expect { client.variant("pro-only", { plan: interrupting }) }.to raise_error(Interrupt)
    failing = Object.new
    def failing.to_s = raise(KeyError, "no")
    expect(client.enabled?("pro-only", { plan: failing })).to be(false)
  end

  it "calls no method of a context's own keys, even keys whose hash collides with a field's" do
    calls = []
    colliding = Object.new
    colliding.define_singleton_method(:hash) { :userId.hash }
    ctx = { colliding => "x", userId: "7" }
    %i[hash eql? == to_s to_str].each do |m|
      colliding.define_singleton_method(m) { |*| (calls << m) && raise("called #{m}") }
    end
    expect(client.enabled?("half", ctx)).to eq(client.enabled?("half", { userId: "7" }))
    expect(client.enabled?("pro-only", ctx)).to be(false)
    expect(calls).to be_empty
  end

  it "reads a field as absent when a redefined Symbol#eql? raises during its lookup" do
    reader, writer = IO.pipe
    pid = Forking.fork_child do
      reader.close
      colliding = Object.new
      def colliding.hash = :userId.hash
      ctx = { colliding => "x", "plan" => "pro" }
      Symbol.class_eval do
        alias_method :forkflag_spec_eql?, :eql?
        define_method(:eql?) { |other| other.equal?(colliding) ? raise("eql? raised") : forkflag_spec_eql?(other) }
      end
      answers = begin
        [client.enabled?("half", ctx), client.enabled?("pro-only", ctx)]
      rescue StandardError => e
        "raised #{e.class}: #{e.message}"
      end
      writer.write(Marshal.dump(answers))
      writer.close
    end
    writer.close
    answers = Marshal.load(reader.read) # rubocop:disable Security/MarshalLoad
    status, = Forking.reap(pid, deadline: Forking.now + 30)
    expect(status).to be_success
    # userId reads as absent (the half rollout has no user id: off); plan
    # is read from its String key.
    expect(answers).to eq([false, true])
  end
end
