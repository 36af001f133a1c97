# frozen_string_literal: true

require "logger"
require "securerandom"
require "uri"

# Every way a process gets forked, with a client created once before the
# fork, against the real Unleash server: the child answers at once from the
# inherited flags, then follows a change made on the server after the fork.
RSpec.describe "a client in every kind of forked process", :integration do
  let(:server) { UnleashServer.instance }
  let!(:app_name) { "forkflag-cases-#{SecureRandom.hex(4)}" }
  let!(:channel) { Forking::Channel.new } # created before any fork
  let(:pids) { [] }   # our children: reaped with a deadline
  let(:strays) { [] } # grandchildren and daemons: killed at the end
  let(:clients) { [] }
  let(:refresh_interval) { 0.2 }
  let!(:flag) do
    name = "case-#{SecureRandom.hex(4)}"
    server.create_flag(name)
    server.add_strategy(name, strategy_name: "default")
    name
  end
  let!(:client) { ready_client }

  after do
    ForkSafe.automatic = true
    Forking.kill_all(strays)
    pids.each { |pid| Forking.reap(pid, deadline: Forking.now + 5) }
    clients.each { |c| c.close(timeout: 2) }
    channel.close
  end

  def new_client(**options)
    c = Forkflag::Client.new(url: server.url, token: server.client_token, app_name: app_name,
                             refresh_interval: refresh_interval, metrics_interval: 60, timeout: 2,
                             backup_path: false, logger: Logger.new(nil), **options)
    clients << c
    c
  end

  def ready_client(**options)
    c = new_client(**options)
    expect(c.wait_until_ready(10)).to be(true)
    # The server serves a new flag a moment after it was created.
    UnleashServer.wait_for(timeout: 10, interval: 0.05, message: "#{flag} loaded") do
      c.flag_names.include?(flag) || (c.refresh(timeout: 2) && false)
    end
    c
  end

  def realtime
    Process.clock_gettime(Process::CLOCK_REALTIME)
  end

  def counting_object
    object = Class.new do
      def calls = @calls ||= Hash.new(0)
      ForkSafe::HOOKS.each { |hook| define_method(hook) { calls[hook] += 1 } }
    end.new
    ForkSafe.register(object)
  end

  # In a forked process: answers from the inherited flags, waits (bounded)
  # for the flip made on the server, then closes the client. Each step is
  # reported over the channel.
  def follow_flip(extra = {})
    first = client.enabled?(flag)
    channel.send_message(event: "first", pid: Process.pid, value: first, generation: ForkSafe.generation,
                         **extra)
    value = first
    deadline = Forking.now + 30
    while value == first && Forking.now < deadline
      sleep 0.005
      value = client.enabled?(flag)
    end
    channel.send_message(event: "saw", value: value, at: realtime, connection_id: client.stats[:connection_id])
    closed = client.close
    channel.send_message(event: "done", closed: closed, threads: ForkSafe.native_threads)
  end

  # Runs the block as a forked process's whole life (for forks that are not
  # made through Forking.fork_child).
  def as_child
    yield
    exit!(0)
  rescue Exception => e # rubocop:disable Lint/RescueException
    warn("child #{Process.pid} failed: #{e.class}: #{e.message}\n#{e.backtrace&.first(8)&.join("\n")}")
    exit!(1)
  end

  def event(messages, name)
    messages.find { |m| m[:event] == name }
  end

  # The test's side of follow_flip: the child answered false at once, then
  # saw the flag turned on after the fork within refresh_interval + 1 s,
  # and its close returned.
  def expect_child_follows_flip
    first = wait_event("first")
    expect(first[:value]).to be(false)
    flipped_at = server.flip(flag, on: true)
    saw = wait_event("saw")
    expect(saw[:value]).to be(true)
    expect(saw[:at] - flipped_at).to be < refresh_interval + 1
    expect(wait_event("done")).to include(closed: true, threads: 0)
    [first, saw]
  end

  def wait_event(name, timeout: 30)
    event(channel.wait_until(timeout: timeout, what: "the child's #{name.inspect}") { |m| event(m, name) }, name)
  end

  def reap(pid, seconds = 30)
    status, late = Forking.reap(pid, deadline: Forking.now + seconds)
    pids.delete(pid)
    expect([late, status&.exitstatus]).to eq([false, 0]), "process #{pid}: late=#{late} status=#{status.inspect}"
  end

  # A process that is not our child: wait (bounded) until it is gone or a
  # zombie of another parent.
  def expect_gone(pid)
    UnleashServer.wait_for(timeout: 10, interval: 0.02, message: "process #{pid} to exit") do
      File.read("/proc/#{pid}/stat").split(") ").last.start_with?("Z")
    rescue Errno::ENOENT, Errno::ESRCH
      true
    end
  end

  it "works in a grandchild whose parent forked it and exit!ed at once (double fork)" do
    middle = Forking.fork_child do
      Forking.fork_child { follow_flip }
      exit!(0)
    end
    pids << middle
    reap(middle)
    first, = expect_child_follows_flip
    strays << first[:pid]
    expect(first[:generation]).to eq(ForkSafe.generation + 2)
    expect_gone(first[:pid])
  end

  it "works in an IO.popen(\"-\") child" do
    io = IO.popen("-")
    if io.nil?
      as_child do
        $stdout.puts("child #{Process.pid} up")
        follow_flip
      end
    end
    pids << io.pid
    expect(io.wait_readable(30)).to be_truthy
    expect(io.gets).to eq("child #{io.pid} up\n")
    first, = expect_child_follows_flip
    expect(first[:pid]).to eq(io.pid)
    reap(io.pid)
    io.close
  end

  it "works in a daemon made by Process.daemon in a forked child, outside Ruby's fork hooks" do
    object = counting_object
    middle = Forking.fork_child do
      client.enabled?(flag)
      raise "middle refresh failed" unless client.refresh(timeout: 5) # its own thread runs now

      before = { generation: ForkSafe.generation, connection_id: client.stats[:connection_id], calls: object.calls }
      Process.daemon(true, true)
      follow_flip(middle: before, calls: object.calls)
    end
    pids << middle
    reap(middle)
    first, saw = expect_child_follows_flip
    strays << first[:pid]
    expect(first[:pid]).not_to eq(middle)
    # Process.daemon forks (twice, on Ruby 3.1) without Process._fork: no
    # ForkSafe callback ran, the native fork generation caught it.
    expect(first[:calls]).to eq(first[:middle][:calls])
    expect(first[:generation]).to be > first[:middle][:generation]
    expect(saw[:connection_id]).not_to eq(first[:middle][:connection_id])
    expect_gone(first[:pid])
  ensure
    ForkSafe.unregister(object) if object
  end

  it "works in a child forked with no hooks at all (automatic detection off, as under Spring)" do
    object = counting_object
    ForkSafe.automatic = false
    pid = Forking.fork_child { follow_flip(calls: object.calls) }
    pids << pid
    ForkSafe.automatic = true
    first, = expect_child_follows_flip
    expect(first[:calls]).to eq({})
    expect(object.calls).to eq({})
    reap(pid)
  ensure
    ForkSafe.unregister(object) if object
  end

  def server_connections
    Connections.to_port(URI(server.url).port)
  end

  it "closes the parent's connections in a child at once, with no Ruby hook and before any use of the client" do
    # The client's keep-alive connection, open between polls.
    held = UnleashServer.wait_for(timeout: 10, interval: 0.02, message: "the client's connection") do
      open = server_connections
      open if open.positive?
    end
    ForkSafe.automatic = false
    pid = Forking.fork_child { channel.send_message(event: "fds", connections: server_connections) }
    pids << pid
    ForkSafe.automatic = true
    expect(wait_event("fds")[:connections]).to eq(0)
    reap(pid)
    expect(held).to be >= 1
    # The parent's connection went on: its next polls still succeed.
    refreshes = client.stats[:refreshes]
    UnleashServer.wait_for(timeout: 10, interval: 0.05, message: "two more polls") do
      client.stats[:refreshes] >= refreshes + 2
    end
    expect(client.stats[:failures]).to eq(0)
  end

  it "works with the explicit hooks called on top of automatic detection, each callback once" do
    object = counting_object
    ForkSafe.before_fork
    pid = Forking.fork_child do
      ForkSafe.after_fork
      follow_flip(calls: object.calls)
    end
    pids << pid
    ForkSafe.after_fork_parent
    first, = expect_child_follows_flip
    expect(first[:calls]).to eq(before_fork: 1, after_fork: 1)
    expect(object.calls).to eq(before_fork: 1, after_fork_parent: 1)
    reap(pid)
  ensure
    ForkSafe.unregister(object) if object
  end

  it "works in a child forked from a thread other than the main one" do
    pid = Thread.new { Forking.fork_child { follow_flip(main: Thread.current == Thread.main) } }.value
    pids << pid
    first, = expect_child_follows_flip
    expect(first[:pid]).to eq(pid)
    expect(first[:main]).to be(true) # the forking thread is the child's main thread
    reap(pid)
  end

  context "with a long refresh_interval" do
    let(:refresh_interval) { 60 }

    it "answers a child's first evaluation from the inherited flags with no request, then refreshes at once" do
      server.enable(flag)
      # The server serves the change; the parent, refreshing once a minute, has not seen it.
      UnleashServer.wait_for(timeout: 10, interval: 0.05, message: "the server to serve #{flag} on") do
        JSON.parse(server.client_features.body).fetch("features").find { |f| f["name"] == flag }&.fetch("enabled")
      end
      expect(client.enabled?(flag)).to be(false)
      pid = Forking.fork_child do
        refreshes = client.stats[:refreshes]
        first = client.enabled?(flag)
        channel.send_message(event: "first", refreshes: refreshes, value: first)
        deadline = Forking.now + 10
        sleep 0.01 until client.enabled?(flag) || Forking.now > deadline
        channel.send_message(event: "saw", value: client.enabled?(flag), refreshes: client.stats[:refreshes])
        channel.send_message(event: "done", closed: client.close)
      end
      pids << pid
      messages = channel.wait_until(timeout: 30, what: "the child") { |m| event(m, "done") }
      expect(event(messages, "first")).to include(refreshes: 0, value: false)
      expect(event(messages, "saw")).to include(value: true, refreshes: 1)
      expect(event(messages, "done")).to include(closed: true)
      reap(pid)
    end

    it "returns from close in children that never used the client, or used it, or exit through at_exit" do
      unused = Forking.fork_child { channel.send_message(event: "unused", closed: client.close) }
      used = Forking.fork_child do
        client.enabled?(flag)
        channel.send_message(event: "used", closed: client.close)
      end
      all = Forking.fork_child do
        client.enabled?(flag)
        Forkflag::Client.close_all # what at_exit runs
        channel.send_message(event: "all", closed: client.closed?)
      end
      pids.push(unused, used, all)
      messages = channel.wait_until(timeout: 30, what: "three children") { |m| m.size == 3 }
      expect(messages.to_h { |m| [m[:event], m[:closed]] }).to eq("unused" => true, "used" => true, "all" => true)
      [unused, used, all].each { |pid| reap(pid) }
      expect(client.enabled?(flag)).to be(false)
      expect(client.refresh(timeout: 5)).to be(true) # the parent's thread is untouched
    end
  end

  it "starts a child's metrics from zero: the parent's counts before the fork stay the parent's" do
    7.times { client.enabled?(flag) }
    pid = Forking.fork_child do
      5.times { client.enabled?(flag) }
      client.close
      channel.send_message(event: "done", reported: client.stats[:reported_evaluations])
    end
    pids << pid
    messages = channel.wait_until(timeout: 30, what: "the child") { |m| event(m, "done") }
    reap(pid)
    expect(event(messages, "done")[:reported]).to eq(5)
    client.close
    expect(client.stats[:reported_evaluations]).to eq(7)
    expect(server.settled_totals(flag, { yes: 0, no: 12 }, app_name: app_name).slice(:yes, :no)).to eq(yes: 0, no: 12)
  end

  # A fresh process (no client of other examples in it): two clients, a
  # fork, and what /proc/self/task shows at each step, in child and parent.
  def thread_hygiene_script
    <<~'RUBY'
      require "forkflag"
      require "json"
      require "logger"

      url, token, app_name, flag = ARGV
      now = -> { Process.clock_gettime(Process::CLOCK_MONOTONIC) }
      names = lambda do
        Dir.children("/proc/self/task").filter_map do |tid|
          File.read("/proc/self/task/#{tid}/comm").chomp
        rescue SystemCallError
          nil
        end.grep(/\Aforkflag/).sort
      end
      wait = lambda do |what, &condition|
        deadline = now.call + 10
        sleep 0.02 until condition.call || now.call > deadline
        raise "timed out waiting for #{what}: #{names.call}" unless condition.call
      end
      # Closes both clients; then the Ruby log thread ends too (Ruby may keep
      # its native thread a few seconds for reuse).
      close_all = lambda do |a, b|
        closed = [a.close, b.close]
        workers = ForkSafe.native_threads
        wait.call("forkflag's threads to end") { names.call.empty? }
        { closed: closed, workers_after_close: workers, finally: names.call }
      end
      clients = Array.new(2) do
        Forkflag::Client.new(url: url, token: token, app_name: app_name, refresh_interval: 0.2, timeout: 2,
                             backup_path: false, logger: Logger.new(nil))
      end
      clients.each { |c| c.wait_until_ready(10) }
      wait.call("two workers") { ForkSafe.native_threads == 2 }
      reader, writer = IO.pipe
      pid = fork do
        report = { before: names.call }
        clients[0].enabled?(flag)
        wait.call("one worker") { ForkSafe.native_threads == 1 }
        report[:one] = names.call
        clients[1].enabled?(flag)
        wait.call("two workers") { ForkSafe.native_threads == 2 }
        report[:two] = names.call
        writer.puts(JSON.generate(report.merge(close_all.call(*clients))))
        exit!(0)
      end
      writer.close
      deadline = now.call + 30
      sleep 0.01 until Process.wait(pid, Process::WNOHANG) || now.call > deadline
      child = reader.read
      puts(JSON.generate(child: child.empty? ? nil : JSON.parse(child), parent: close_all.call(*clients)))
    RUBY
  end

  it "leaves no forkflag thread: none in a child before first use, one per client after, none after close" do
    reader, writer = IO.pipe
    lib = File.expand_path("../../lib", __dir__)
    pid = Process.spawn(RbConfig.ruby, "-I", lib, "-e", thread_hygiene_script,
                        server.url, server.client_token, app_name, flag, out: writer)
    pids << pid
    writer.close
    reap(pid, 60)
    report = JSON.parse(reader.read, symbolize_names: true)
    child = report[:child]
    expect(child[:before]).to eq([])
    expect(child[:one] - ["forkflag-log"]).to eq(["forkflag-worker"])
    expect(child[:two] - ["forkflag-log"]).to eq(%w[forkflag-worker forkflag-worker])
    expect(child).to include(closed: [true, true], workers_after_close: 0, finally: [])
    expect(report[:parent]).to eq(closed: [true, true], workers_after_close: 0, finally: [])
  ensure
    reader&.close
  end
end
