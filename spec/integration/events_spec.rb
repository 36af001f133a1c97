# frozen_string_literal: true

require "securerandom"
require "socket"
require "stringio"
require "tmpdir"
require "active_support/notifications"

# Change and error events, and ActiveSupport::Notifications, against a real
# unleash-server 8.2.0 (spec/support/unleash_server.rb) and real forks.
RSpec.describe "Client events against a real Unleash server", :integration do
  include FlagPayloads

  let(:server) { UnleashServer.instance }
  let(:app_name) { "forkflag-events-#{SecureRandom.hex(4)}" }
  let(:log) { StringIO.new }
  let(:logger) { Logger.new(log) }
  let(:clients) { [] }
  let(:inbox) { EventInbox.new }

  def unique(name)
    "#{name}-#{SecureRandom.hex(4)}"
  end

  def client(**options)
    c = Forkflag::Client.new(url: server.url, token: server.client_token, app_name: app_name,
                             refresh_interval: 0.2, metrics_interval: 60, timeout: 2, logger: logger,
                             backup_path: false, **options)
    clients << c
    c
  end

  # The next change that names the flag in the given list.
  def change_of(name, list)
    inbox.next_matching(what: "a change with #{name} #{list}") do |e|
      e.is_a?(Forkflag::Change) && e.public_send(list).include?(name)
    end
  end

  def closed_port
    socket = TCPServer.new("127.0.0.1", 0)
    socket.addr[1].tap { socket.close }
  end

  after { clients.each { |c| c.close(timeout: 5) } }

  it "tells a flag created, changed and deleted on the server, with the response's ETag" do
    name = unique("events")
    c = client
    expect(c.wait_until_ready(10)).to be(true)
    c.on_change(&inbox.listener)

    server.create_flag(name)
    server.add_strategy(name, strategy_name: "flexibleRollout",
                              parameters: { rollout: 100, stickiness: "default", groupId: name })
    server.enable(name)
    added = change_of(name, :added)
    expect(added).to have_attributes(source: :server, removed: [])
    expect(added.etag).to match(/\A"[^"]+:\d+:v1"\z/)
    expect(added.flags).to eq(c.flag_names.size)

    strategy = server.strategies(name).first
    server.update_strategy(name, strategy.fetch("id"), strategy_name: "flexibleRollout",
                                                       parameters: { rollout: 30, stickiness: "default",
                                                                     groupId: name })
    changed = change_of(name, :changed)
    expect(changed.added).not_to include(name)
    expect(changed.etag).not_to eq(added.etag)

    server.delete_flag(name)
    removed = change_of(name, :removed)
    expect(removed.changed).not_to include(name)
    expect(c.known?(name)).to be(false)
  end

  it "tells no change for a refresh that changed nothing" do
    # Only this example's flags (others' changes reach the server meanwhile).
    prefix = unique("quiet")
    c = client(name_prefix: prefix)
    c.wait_until_ready(10)
    c.on_change(&inbox.listener)
    # Refreshes answered 304 meanwhile; the first event is this flag's.
    expect(c.refresh).to be(true)
    expect(c.refresh).to be(true)
    server.create_flag("#{prefix}-a")
    first = inbox.next(what: "a change")
    expect(first.to_h).to include(added: ["#{prefix}-a"], changed: [], removed: [])
  end

  it "tells errors: a closed port (connection), a refused token (status 401, polling stopped)" do
    unreachable = client(url: "http://127.0.0.1:#{closed_port}/api")
    unreachable.on_error(&inbox.listener)
    error = inbox.next(what: "the connection error")
    expect(error).to be_a(Forkflag::BackgroundError)
    expect(error).to have_attributes(kind: :connection, status: nil, source: :server)
    expect(error.message).to include("GET http://127.0.0.1")
    expect(error.failures).to eq(1)
    second = inbox.next(what: "the next failed attempt")
    expect(second.failures).to eq(2)
    stats = unreachable.stats
    expect(stats[:failures]).to be >= 2
    expect(stats[:refresh_delay]).to be > 0.2 # backing off

    refused = EventInbox.new
    bad = client(token: "default:development.not-a-token")
    bad.on_error(&refused.listener)
    error = refused.next(what: "the refusal")
    expect(error).to have_attributes(kind: :refused, status: 401, source: :server)
    expect(error.message).not_to include("not-a-token")
    expect(bad.stats[:polling_stopped]).to be(true)
  end

  it "delivers a change in a forked child, to the listener it inherited and to its own, in the child" do
    channel = Forking::Channel.new
    name = unique("forked")
    parent = client
    parent.wait_until_ready(10)
    parent.on_change { |change| channel.send_message(by: "inherited", pid: Process.pid, added: change.added) }

    pid = Forking.fork_child do
      own = Thread::Queue.new
      parent.on_change do |change|
        channel.send_message(by: "own", pid: Process.pid, added: change.added)
        own << change if change.added.include?(name)
      end
      parent.enabled?(name) # the child's first evaluation starts its threads
      channel.send_message(ready: Process.pid)
      Timeout.timeout(20) { own.pop } # then exit
    end
    channel.wait_until(timeout: 10, what: "the child ready") { |m| m.any? { |x| x[:ready] == pid } }
    server.create_flag(name)
    messages = channel.wait_until(timeout: 20, what: "both listeners called in the child") do |m|
      %w[inherited own].all? { |by| m.any? { |x| x[:by] == by && x[:pid] == pid && x[:added].include?(name) } }
    end
    expect(messages.select { |x| x[:pid] == Process.pid }.map { |x| x[:by] }).to all(eq("inherited"))
    status, late = Forking.reap(pid, deadline: Forking.now + 10)
    expect(status&.success?).to be(true)
    expect(late).to be(false)
  ensure
    channel&.close
  end

  describe "through ActiveSupport::Notifications" do
    let(:notifications) { EventInbox.new }
    let(:subscribers) { [] }

    def subscribe(pattern)
      subscribers << ActiveSupport::Notifications.subscribe(pattern) do |*args|
        notifications << ActiveSupport::Notifications::Event.new(*args)
      end
    end

    after { subscribers.each { |s| ActiveSupport::Notifications.unsubscribe(s) } }

    it "instruments refresh.forkflag for every refresh, with what changed" do
      subscribe("refresh.forkflag")
      # Only this example's flags (others' changes reach the server meanwhile).
      prefix = unique("as-refresh")
      server.create_flag("#{prefix}-1")
      c = client(name_prefix: prefix)
      mine = ->(e) { e.payload[:client].equal?(c) }
      first = notifications.next_matching(what: "the first refresh", &mine)
      expect(first.payload).to include(source: :server, changed: true, flags: 1)
      expect(first.payload[:duration]).to be_a(Float).and be > 0
      expect(first.payload[:change].added).to eq(["#{prefix}-1"])

      quiet = notifications.next_matching(what: "an unchanged refresh", &mine)
      expect(quiet.payload).to include(changed: false, change: nil, source: :server, flags: 1)
      # (The ETag may differ: the server's revision counts every project's
      # changes, while this client's flags stayed the same.)
      expect(quiet.payload[:etag]).to match(/\A"[^"]+:\d+:v1"\z/)

      server.create_flag("#{prefix}-2")
      created = notifications.next_matching(what: "the refresh with #{prefix}-2") do |e|
        mine.call(e) && e.payload[:changed]
      end
      expect(created.payload[:change].added).to eq(["#{prefix}-2"])
      expect(created.payload[:etag]).not_to eq(first.payload[:etag])
    end

    it "instruments the configuration a client was created with, which listeners registered later do not get" do
      subscribe("refresh.forkflag")
      c = Forkflag::Client.new(bootstrap: payload(flag("boot"))).tap { |x| clients << x }
      c.on_change(&inbox.listener)
      boot = notifications.next_matching(what: "the bootstrap's refresh") { |e| e.payload[:client].equal?(c) }
      expect(boot.payload).to include(source: :bootstrap, changed: true, flags: 1, etag: nil)
      expect(boot.payload[:change].added).to eq(["boot"])
      c.update(payload(flag("boot"), flag("later")))
      expect(inbox.next.to_h).to include(added: ["later"], source: :update)
    end

    it "instruments a backup refused at creation as error.forkflag, which listeners registered later do not get" do
      subscribe("error.forkflag")
      Dir.mktmpdir do |dir|
        backup = File.join(dir, "backup.json")
        File.write(backup, "{ not a payload")
        File.chmod(0o600, backup)
        c = client(url: "http://127.0.0.1:#{closed_port}/api", backup_path: backup)
        c.on_error(&inbox.listener)
        refused = notifications.next_matching(what: "the backup's error") do |e|
          e.payload[:client].equal?(c) && e.payload[:source] == :backup
        end
        expect(refused.payload).to include(kind: :backup, status: nil)
        expect(refused.payload[:message]).to include("ignoring the backup file", backup)
        # The listener's first error is the server's, not the backup's.
        expect(inbox.next).to have_attributes(source: :server, kind: :connection)
      end
    end

    it "instruments error.forkflag with the error's fields" do
      subscribe("error.forkflag")
      c = client(url: "http://127.0.0.1:#{closed_port}/api")
      event = notifications.next_matching(what: "an error of this client") { |e| e.payload[:client].equal?(c) }
      expect(event.payload).to include(kind: :connection, status: nil, source: :server)
      expect(event.payload[:error]).to be_a(Forkflag::BackgroundError)
      expect(event.payload[:message]).to eq(event.payload[:error].message)
    end

    it "instruments impression.forkflag for a flag with impression data, without a listener" do
      subscribe("impression.forkflag")
      name = unique("as-impression")
      server.create_flag(name, impression_data: true)
      server.add_strategy(name)
      server.enable(name)
      c = client
      c.wait_until_ready(10)
      UnleashServer.wait_for(timeout: 10, interval: 0.05, message: "#{name} loaded") { c.known?(name) }
      # Evaluations take the general path once the event thread saw the
      # change that brought the flag; impressions are instrumented at once,
      # on the evaluating thread.
      UnleashServer.wait_for(timeout: 10, interval: 0.05, message: "an impression") do
        c.enabled?(name, { userId: "7" })
        notifications.size.positive?
      end
      event = notifications.next
      expect(event.payload).to include(event_type: :is_enabled, feature_name: name, enabled: true, variant: nil)
      expect(event.payload[:context]).to eq({ userId: "7" })
      expect(event.payload[:event_id]).to match(/\A\h{8}-/)

      # A flag without impression data: none; the one with: one each call.
      plain = unique("as-plain")
      c.update(payload(flag(name, impression_data: true), flag(plain)))
      c.enabled?(plain)
      c.variant(plain)
      expect(notifications.size).to eq(0)
      c.variant(name)
      expect(notifications.size).to eq(1)
      expect(notifications.next.payload).to include(event_type: :get_variant, feature_name: name, variant: "disabled")
    end

    it "sends evaluations through impressions only while something subscribes to impression.forkflag" do
      expect(ActiveSupport::Notifications.notifier.listening?("impression.forkflag")).to be(false)
      name = unique("as-heard")
      server.create_flag(name, impression_data: true)
      server.add_strategy(name)
      server.enable(name)
      c = client
      UnleashServer.wait_for(timeout: 10, interval: 0.05, message: "#{name} loaded") { c.known?(name) }
      emitted = 0
      c.define_singleton_method(:_emit_impression) do |*args|
        emitted += 1
        super(*args)
      end
      3.times { c.enabled?(name) }
      expect(emitted).to eq(0) # nobody listens: the fast path answers

      subscribe("impression.forkflag")
      UnleashServer.wait_for(timeout: 5, interval: 0.05, message: "impressions once subscribed") do
        c.enabled?(name)
        emitted.positive?
      end
      expect(notifications.next.payload).to include(feature_name: name)

      ActiveSupport::Notifications.unsubscribe(subscribers.pop)
      UnleashServer.wait_for(timeout: 5, interval: 0.05, message: "the fast path once unsubscribed") do
        before = emitted
        c.enabled?(name)
        emitted == before
      end
    end

    it "instruments evaluation.forkflag for the sampled fraction of evaluations only" do
      subscribe("evaluation.forkflag")
      json = payload(flag("a"), flag("v", variants: [{ name: "blue", weight: 1 }]))
      everything = Forkflag::Client.new(bootstrap: json, instrument_evaluations: 1.0).tap { |c| clients << c }
      everything.enabled?("a")
      everything.variant("v")
      expect(notifications.next.payload).to include(name: "a", enabled: true, variant: nil)
      expect(notifications.next.payload).to include(name: "v", enabled: true, variant: "blue")

      # Instrumented on the evaluating thread: counted as soon as made.
      none = Forkflag::Client.new(bootstrap: json).tap { |c| clients << c }
      100.times { none.enabled?("a") }
      expect(notifications.size).to eq(0)
      half = Forkflag::Client.new(bootstrap: json, instrument_evaluations: 0.5).tap { |c| clients << c }
      400.times { half.enabled?("a") }
      # Binomial(400, 0.5): outside 120..280 about once in 10^19 runs.
      expect(notifications.size).to be_between(120, 280)
    end
  end
end
