# frozen_string_literal: true

require "logger"
require "tmpdir"

# ForkSafe with real forks: the registry, the callbacks around a fork, the
# explicit hooks on top of automatic detection, the opt-out, and the stats
# operators read. Clients here read a file: source, so no server is needed.
RSpec.describe ForkSafe do
  include FlagPayloads

  let!(:channel) { Forking::Channel.new } # created before any fork
  let(:pids) { [] }
  let(:registered) { [] }
  let(:clients) { [] }
  let(:tmp) { Dir.mktmpdir("forkflag-fork-safe") }
  let(:flags_file) { File.join(tmp, "flags.json") }

  after do
    ForkSafe.automatic = true
    registered.each { |o| ForkSafe.unregister(o) }
    clients.each { |c| c.close(timeout: 2) }
    Forking.kill_all(pids)
    pids.each { |pid| Forking.reap(pid, deadline: Forking.now + 5) }
    channel.close
    FileUtils.rm_rf(tmp)
  end

  # An object that counts the callbacks it gets (before_fork, after_fork,
  # after_fork_parent) in the process it is in.
  def counting_object
    object = Class.new do
      def calls = @calls ||= Hash.new(0)
      ForkSafe::HOOKS.each { |hook| define_method(hook) { calls[hook] += 1 } }
    end.new
    registered << ForkSafe.register(object)
    object
  end

  def write_flags(enabled)
    File.write("#{flags_file}.tmp", payload(flag("f", enabled: enabled)))
    File.rename("#{flags_file}.tmp", flags_file)
  end

  def file_client
    write_flags(true) unless File.exist?(flags_file)
    client = Forkflag::Client.new(file: flags_file, refresh_interval: 0.05, logger: Logger.new(nil))
    clients << client
    client
  end

  # Forks a child that runs the block and sends its result (a Hash) back;
  # waits for the message and reaps the child with a deadline.
  def in_child(timeout: 30, &block)
    before = channel.messages.size
    pid = Forking.fork_child { channel.send_message(block.call) }
    pids << pid
    message = channel.wait_until(timeout: timeout, what: "child #{pid}") { |m| m.size > before }[before]
    status, late = Forking.reap(pid, deadline: Forking.now + timeout)
    pids.delete(pid)
    expect([late, status&.exitstatus]).to eq([false, 0]), "child #{pid}: late=#{late} status=#{status.inspect}"
    message
  end

  # Waits (bounded) until the block is true.
  def eventually(timeout, what)
    deadline = Forking.now + timeout
    until (result = yield)
      raise "timed out after #{timeout}s waiting for #{what}" if Forking.now > deadline

      sleep 0.02
    end
    result
  end

  def finalizer_for(log, index)
    proc { log << index }
  end

  def register_short_lived(count, log)
    count.times do |i|
      object = Object.new
      def object.after_fork = nil
      ObjectSpace.define_finalizer(object, finalizer_for(log, i))
      ForkSafe.register(object)
    end
    nil
  end

  describe ".unregister" do
    it "takes an object out of the fork's callbacks, found by identity, calling nothing on the others" do
      gone = counting_object
      touchy = Class.new do
        def after_fork = nil
        def equal?(_other) = raise("equal? called")
        def ==(_other) = raise("== called")
        def hash = raise("hash called")
      end.new
      registered << described_class.register(touchy)
      expect(described_class.unregister(gone)).to be(gone)
      expect(described_class.unregister(Object.new)).to be_an(Object) # never registered: nothing happens
      kept = counting_object
      expect(in_child { { gone: gone.calls, kept: kept.calls } })
        .to eq(gone: {}, kept: { before_fork: 1, after_fork: 1 })
    end
  end

  describe ".register" do
    it "rejects an object that responds to none of the hooks, naming it and the hooks" do
      thing = Struct.new(:label).new("thing-without-hooks")
      expect { described_class.register(thing) }.to raise_error(
        ArgumentError, /before_fork, after_fork, after_fork_parent.*thing-without-hooks/
      )
    end

    it "accepts an object with any one of the hooks and returns it" do
      object = Object.new
      def object.after_fork_parent = nil
      expect(described_class.register(object)).to be(object)
      registered << object
    end

    it "holds objects weakly: registered objects nothing else refers to are collected" do
      collected = []
      register_short_lived(100, collected)
      kept = counting_object
      10.times do
        GC.start(full_mark: true, immediate_sweep: true)
        sleep 0.01 # finalizers run at the next safe point
        break if collected.size >= 90
      end
      # The stack is scanned conservatively, so a few may survive.
      expect(collected.size).to be >= 90
      expect(in_child { { calls: kept.calls } }[:calls]).to eq(before_fork: 1, after_fork: 1)
    end

    it "never hands an object that is garbage to a callback, however often objects come and go" do
      # Registered objects die at once, and the callbacks allocate, so
      # garbage collection (lazy sweeping) runs while the registry is read:
      # an object handed out dead is freed under the caller (the VM
      # crashes on it).
      short_lived = Class.new do
        def self.calls = @calls ||= []

        def before_fork
          self.class.calls << [self.class, Array.new(4) { "x" * 40 }]
          self.class.calls.shift if self.class.calls.size > 100
        end
      end
      5000.times do |i|
        described_class.register(short_lived.new)
        next unless (i % 20).zero?

        described_class.before_fork
        described_class.after_fork_parent
      end
      expect(short_lived.calls.size).to eq(100)
      expect(short_lived.calls.map(&:first).uniq).to eq([short_lived])
    end
  end

  describe "around a fork" do
    it "runs before_fork and after_fork_parent in the parent and after_fork in the child, once each" do
      object = counting_object
      child = in_child { { calls: object.calls } }
      expect(child[:calls]).to eq(before_fork: 1, after_fork: 1)
      expect(object.calls).to eq(before_fork: 1, after_fork_parent: 1)
    end

    it "runs nothing twice when the explicit hooks are called on top of automatic detection" do
      object = counting_object
      expect(described_class.before_fork).to be(true)
      expect(described_class.before_fork).to be(false)
      child = in_child do
        again = described_class.after_fork
        { again: again, calls: object.calls }
      end
      expect(described_class.after_fork_parent).to be(false)
      expect(child).to eq(again: false, calls: { before_fork: 1, after_fork: 1 })
      expect(object.calls).to eq(before_fork: 1, after_fork_parent: 1)

      # The next fork from the same parent (a Unicorn master) runs them again.
      expect(described_class.before_fork).to be(true)
      second = in_child { { again: described_class.after_fork, calls: object.calls } }
      expect(described_class.after_fork_parent).to be(false)
      expect(second).to eq(again: false, calls: { before_fork: 2, after_fork: 1, after_fork_parent: 1 })
      expect(object.calls).to eq(before_fork: 2, after_fork_parent: 2)
    end

    it "keeps running the other callbacks when one raises, and says which one did" do
      failing = Class.new do
        def before_fork = raise("boom before")
        def after_fork = raise("boom after")
      end.new
      registered << described_class.register(failing)
      object = counting_object
      child = nil
      expect { child = in_child { { calls: object.calls } } }.to output(/before_fork raised RuntimeError: boom before/)
        .to_stderr
      expect(child[:calls]).to eq(before_fork: 1, after_fork: 1)
      expect(object.calls).to eq(before_fork: 1, after_fork_parent: 1)
    end
  end

  describe "with automatic detection off" do
    it "runs callbacks only from the explicit hooks" do
      object = counting_object
      described_class.automatic = false
      expect(described_class.automatic?).to be(false)

      bare = in_child { { calls: object.calls } }
      expect(bare[:calls]).to eq({})
      expect(object.calls).to eq({})

      expect(described_class.before_fork).to be(true)
      hooked = in_child { { ran: described_class.after_fork, again: described_class.after_fork, calls: object.calls } }
      expect(described_class.after_fork_parent).to be(true)
      expect(hooked).to eq(ran: true, again: false, calls: { before_fork: 1, after_fork: 1 })
      expect(object.calls).to eq(before_fork: 1, after_fork_parent: 1)
    end

    it "still gives a client in the child its own thread on first use, with a new connection id" do
      client = file_client
      expect(client.wait_until_ready(10)).to be(true)
      parent_connection = client.stats[:connection_id]
      described_class.automatic = false

      child = in_child do
        before = { threads: described_class.native_threads, state: client.stats[:state] }
        first = client.enabled?("f")
        # A new thread takes its name a moment after it starts.
        eventually(5, "the worker thread") { described_class.native_threads.positive? }
        started = { threads: described_class.native_threads, stats: client.stats }
        write_flags(false)
        flipped = eventually(5, "the child's thread to see the file change") { !client.enabled?("f") }
        { before: before, first: first, threads: started[:threads], alive: started[:stats][:thread_alive],
          connection_id: started[:stats][:connection_id], flipped: flipped }
      end

      expect(child[:before]).to eq(threads: 0, state: "idle")
      expect(child[:first]).to be(true)
      expect(child[:threads]).to eq(1)
      expect(child[:alive]).to be(true)
      expect(child[:connection_id]).to match(/\A\h{8}-\h{4}-4\h{3}-\h{4}-\h{12}\z/)
      expect(child[:connection_id]).not_to eq(parent_connection)
      expect(child[:flipped]).to be(true)
      # The parent's thread went on: it sees the file the child wrote.
      eventually(5, "the parent to see the file change") { !client.enabled?("f") }
      expect(client.stats[:connection_id]).to eq(parent_connection)
    end

    it "starts a thread in each child and grandchild, each with its own connection id" do
      client = file_client
      expect(client.wait_until_ready(10)).to be(true)

      children = Array.new(2) do
        in_child do
          expect(client.enabled?("f")).to be(true)
          mine = client.stats
          raise "the child's thread did not refresh" unless client.refresh(timeout: 10)

          reader, writer = IO.pipe
          grandchild = fork do
            reader.close
            client.enabled?("f")
            s = client.stats
            writer.write(JSON.generate(connection_id: s[:connection_id], alive: s[:thread_alive]))
            writer.close
            exit!(0)
          end
          writer.close
          Process.wait(grandchild)
          { connection_id: mine[:connection_id], alive: mine[:thread_alive],
            grandchild: JSON.parse(reader.read, symbolize_names: true) }
        end
      end

      expect(children.map { |c| c[:alive] }).to eq([true, true])
      expect(children.map { |c| c.dig(:grandchild, :alive) }).to eq([true, true])
      ids = children.flat_map { |c| [c[:connection_id], c.dig(:grandchild, :connection_id)] }
      ids << client.stats[:connection_id]
      expect(ids).to all(match(/\A\h{8}-\h{4}-4\h{3}-[89ab]\h{3}-\h{12}\z/))
      expect(ids.uniq.size).to eq(5)
      # A restart after park counts on from the refreshes before it.
      refreshes = client.stats[:refreshes]
      client.park
      client.enabled?("f")
      expect(client.stats).to include(state: :running)
      expect(client.stats[:refreshes]).to be >= refreshes
    end
  end

  describe ".stats" do
    it "reports pid, generation, forkflag's native threads, open clients and the last refresh" do
      parent_generation = described_class.generation
      stats = lambda do
        s = described_class.stats
        at = s[:last_refresh_at]
        raise "last_refresh_at is a #{at.class}" unless at.nil? || at.is_a?(Time)

        s.merge(last_refresh_at: s[:last_refresh_at]&.to_f)
      end
      child = in_child do
        baseline = stats.call
        started_at = Time.now
        a = file_client
        b = file_client
        a.wait_until_ready(10)
        b.wait_until_ready(10)
        eventually(5, "two worker threads") { described_class.native_threads >= 2 }
        newest = -> { [a.stats[:last_refresh_at], b.stats[:last_refresh_at]].max.to_f }
        newest_before = newest.call
        two = stats.call
        newest_after = newest.call
        a.close
        one = stats.call
        b.close
        eventually(5, "threads to end") { described_class.native_threads.zero? }
        none = stats.call
        { pid: Process.pid, baseline: baseline, two: two, one: one, none: none, started_at: started_at.to_f,
          newest: [newest_before, newest_after], keys: two.keys.map(&:to_s) }
      end

      expect(child[:keys]).to eq(%w[pid generation threads_alive clients last_refresh_at])
      expect(child[:baseline]).to include(pid: child[:pid], generation: parent_generation + 1, threads_alive: 0)
      expect(child[:baseline][:last_refresh_at]).to be_nil
      expect(child[:two]).to include(threads_alive: 2, clients: child[:baseline][:clients] + 2)
      # The newest of the clients' last refreshes (they go on refreshing).
      expect(child[:two][:last_refresh_at]).to be_between(*child[:newest])
      expect(child[:newest].first).to be >= child[:started_at] - 0.001
      expect(child[:one]).to include(threads_alive: 1, clients: child[:baseline][:clients] + 1)
      expect(child[:none]).to include(threads_alive: 0, clients: child[:baseline][:clients])

      own = described_class.stats
      expect(own[:pid]).to eq(Process.pid)
      expect(own[:generation]).to eq(parent_generation)
    end
  end
end
