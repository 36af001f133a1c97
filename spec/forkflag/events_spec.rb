# frozen_string_literal: true

require "stringio"

RSpec.describe "Client#on_change and #on_error" do
  include FlagPayloads

  let(:log) { StringIO.new }
  let(:logger) { Logger.new(log) }
  let(:inbox) { EventInbox.new }
  let(:segment) { { id: 7, constraints: [constraint("plan", "IN", values: ["pro"])] } }
  let(:segmented) { { name: "default", constraints: [], segments: [7] } }

  def client_with(json, **options)
    Forkflag::Client.new(bootstrap: json, logger: logger, **options).tap { |c| clients << c }
  end

  def clients
    @clients ||= []
  end

  after { clients.each(&:close) }

  it "tells the flags added, changed and removed by an update, sorted, and nothing for an equal payload" do
    client = client_with(payload(flag("keep"), flag("off", enabled: false), flag("seg", strategies: [segmented]),
                                 flag("gone"), segments: [segment]))
    client.on_change(&inbox.listener)

    # A different document (order, whitespace, a field the client does not
    # read) with the same definitions: no change.
    same = JSON.parse(payload(flag("seg", strategies: [segmented]), flag("off", enabled: false), flag("keep"),
                              flag("gone"), segments: [segment]))
    same["features"].each { |f| f["description"] = "read by nobody" }
    client.update(JSON.pretty_generate(same))
    client.update(payload(flag("seg", strategies: [segmented]), flag("off", enabled: true), flag("keep"),
                          flag("new-b"), flag("new-a"),
                          segments: [{ id: 7, constraints: [constraint("plan", "IN", values: %w[pro max])] }]))

    change = inbox.next
    expect(change).to be_a(Forkflag::Change).and be_frozen
    expect(change.to_h).to include(added: %w[new-a new-b], changed: %w[off seg], removed: ["gone"],
                                   source: :update, flags: 5, etag: nil)
    expect(change.at).to be_within(60).of(Time.now)
    expect(change.duration).to be_a(Float).and be >= 0
    expect(change.added).to be_frozen

    # The same payload again: no event (the next one is the later change).
    client.update(payload(flag("seg", strategies: [segmented]), flag("off", enabled: true), flag("keep"),
                          flag("new-b"), flag("new-a"),
                          segments: [{ id: 7, constraints: [constraint("plan", "IN", values: %w[pro max])] }]))
    client.update(payload(flag("keep", strategies: [{ name: "userWithId", parameters: { userIds: "1" } }])))
    expect(inbox.next.to_h).to include(added: [], changed: ["keep"], removed: %w[new-a new-b off seg])
  end

  it "logs a listener that raises, and keeps delivering to it and to the others" do
    client = client_with(payload(flag("a")))
    calls = 0
    client.on_change do |_change|
      calls += 1
      raise "listener broke" if calls == 1
    end
    client.on_change(&inbox.listener)

    client.update(payload(flag("a"), flag("b")))
    expect(inbox.next.added).to eq(["b"])
    client.update(payload(flag("a"), flag("b"), flag("c")))
    expect(inbox.next.added).to eq(["c"])
    expect(calls).to eq(2)
    expect(Forkflag::Logging.thread).to be_alive
    expect(log.string).to include("on_change listener raised RuntimeError: listener broke")
  end

  it "tells a flags file rejected while watched, keeps the good configuration, then tells the fix" do
    with_flags_file(payload(flag("f"))) do |path|
      client = Forkflag::Client.new(file: path, refresh_interval: 0.05, logger: logger).tap { |c| clients << c }
      client.on_error(&inbox.listener)
      client.on_change(&inbox.listener)
      File.write(path, "{ not a payload")

      error = inbox.next(what: "the error of the broken file")
      expect(error).to be_a(Forkflag::BackgroundError).and be_frozen
      expect(error).to have_attributes(kind: :invalid_payload, source: :file, status: nil)
      expect(error.message).to include(path)
      expect(error.failures).to be >= 1
      expect(error.to_h).to include(kind: :invalid_payload, source: :file, message: error.message)
      expect(client.enabled?("f")).to be(true)

      File.write(path, payload(flag("f"), flag("g")))
      fixed = inbox.next_matching(what: "the change of the fixed file") { |e| e.is_a?(Forkflag::Change) }
      expect(fixed).to have_attributes(added: ["g"], source: :file, flags: 2)
    end
  end

  it "sends an unreadable flags file to on_error as :file" do
    with_flags_file(payload(flag("f"))) do |path|
      client = Forkflag::Client.new(file: path, refresh_interval: 0.05, logger: logger).tap { |c| clients << c }
      client.on_error(&inbox.listener)
      File.unlink(path)
      expect(inbox.next).to have_attributes(kind: :file, source: :file)
    end
  end

  it "needs a block" do
    client = client_with(payload(flag("a")))
    expect { client.on_change }.to raise_error(ArgumentError, /on_change needs a block/)
    expect { client.on_error }.to raise_error(ArgumentError, /on_error needs a block/)
  end

  it "checks instrument_evaluations: a number from 0 to 1" do
    json = payload(flag("a"))
    [-0.1, 1.5, Float::NAN].each do |bad|
      expect { Forkflag::Client.new(bootstrap: json, instrument_evaluations: bad) }
        .to raise_error(ArgumentError, /option :instrument_evaluations must be a number from 0 to 1/)
    end
    expect { Forkflag::Client.new(bootstrap: json, instrument_evaluations: "0.5") }
      .to raise_error(TypeError, /option :instrument_evaluations must be a number from 0 to 1, got "0.5"/)
    expect(client_with(json, instrument_evaluations: 1).config.instrument_evaluations).to eq(1)
    expect(client_with(json).config.instrument_evaluations).to eq(0)
  end

  it "answers the same with sampling on, and counts the same" do
    json = payload(flag("a", strategies: [rollout(50, group_id: "a")]), flag("b"))
    plain = client_with(json)
    sampled = client_with(json, instrument_evaluations: 1.0)
    answers = ->(c) { Array.new(50) { |i| [c.enabled?("a", { userId: i.to_s }), c.variant("b").name] } }
    expect(answers.call(sampled)).to eq(answers.call(plain))
  end
end
