# frozen_string_literal: true

require "json"
require "logger"
require "securerandom"
require "socket"
require "stringio"
require "tmpdir"

# Thousands of forks at random instants while the client's thread is busy
# (refreshing every 10 ms from the real server, reporting metrics every
# 50 ms, writing its backup file): every child answers, resolves a name,
# refreshes and exits in time; none hangs, none crashes.
RSpec.describe "a fork storm", :integration do
  let(:server) { UnleashServer.instance }
  let!(:app_name) { "forkflag-storm-#{SecureRandom.hex(4)}" }
  let!(:channel) { Forking::Channel.new } # created before any fork
  let(:tmp) { Dir.mktmpdir("forkflag-storm") }
  let(:log) { StringIO.new }
  let(:children) { {} } # pid => when it was forked
  let(:problems) { [] }

  forks = 2000
  max_alive = 8
  child_seconds = 5
  run_limit = 360

  after do
    children.each_key { |pid| Forking.reap(pid, deadline: Forking.now) }
    @client&.close(timeout: 2)
    channel.close
    FileUtils.rm_rf(tmp)
  end

  def enabled_flag(prefix)
    name = "#{prefix}-#{SecureRandom.hex(4)}"
    server.create_flag(name)
    server.add_strategy(name, strategy_name: "default")
    server.enable(name)
    name
  end

  def flip(name, on:)
    on ? server.enable(name) : server.disable(name)
  end

  # Replaces a second client with a new one, whose thread resolves the
  # server's name at once: the next forks may land while it does (the fork
  # gate makes them wait for it).
  def start_another(url, previous)
    previous&.close(timeout: 2)
    Forkflag::Client.new(url: url, token: server.client_token, app_name: app_name, refresh_interval: 0.05,
                         disable_metrics: true, timeout: 2, backup_path: false, logger: Logger.new(log))
  end

  def tasks
    Dir.children("/proc/self/task").size
  end

  # The child's whole life: answer, resolve, refresh, close, exit.
  def storm_child(client, flag)
    raise "#{flag} evaluated to false" unless client.enabled?(flag, { userId: Process.pid.to_s })
    raise "localhost did not resolve" if Addrinfo.getaddrinfo("localhost", nil, nil, :STREAM).empty?
    raise "refresh did not complete: #{client.stats.inspect}" unless client.refresh(timeout: 3)

    client.close(timeout: 1)
  rescue StandardError => e
    channel.send_message(pid: Process.pid, error: "#{e.class}: #{e.message}"[0, 500])
    raise
  end

  # Reaps the children that ended; a child older than its deadline is
  # killed (INT, then KILL) and counted as hung.
  def collect(deadline_seconds)
    children.to_a.each do |pid, forked_at|
      _, status = Process.waitpid2(pid, Process::WNOHANG)
      if status
        children.delete(pid)
        problems << { pid: pid, crashed: status.inspect } unless status.success?
      elsif Forking.now - forked_at > deadline_seconds
        status, = Forking.reap(pid, deadline: Forking.now)
        children.delete(pid)
        problems << { pid: pid, hung: "still running after #{deadline_seconds} s", then: status.inspect }
      end
    end
    channel.messages # keeps the pipe drained
  end

  it "has every child answer, resolve localhost, refresh and exit within 5 s: none hung, none crashed" do
    flag = enabled_flag("storm")
    churn = enabled_flag("churn") # flipped during the storm: fresh payloads, backup writes
    url = server.url.sub("//127.0.0.1:", "//localhost:")
    expect(url).to include("//localhost:")
    backup = File.join(tmp, "backup.json")
    client = @client = Forkflag::Client.new(url: url, token: server.client_token, app_name: app_name,
                                            refresh_interval: 0.01, metrics_interval: 0.05, timeout: 2,
                                            backup_path: backup, logger: Logger.new(log))
    expect(client.wait_until_ready(10)).to be(true)
    UnleashServer.wait_for(timeout: 10, interval: 0.05, message: "#{flag} on") { client.enabled?(flag) }
    refreshes_before = client.stats[:refreshes]
    threads_before = { tasks: tasks, ruby: Thread.list.size, native: ForkSafe.native_threads }

    random = Random.new(RSpec.configuration.seed)
    started = Forking.now
    made = 0
    starting = nil
    while made < forks
      raise "the storm ran over #{run_limit} s after #{made} forks" if Forking.now - started > run_limit

      collect(child_seconds)
      if children.size >= max_alive
        sleep 0.001
        next
      end
      sleep(random.rand * 0.003) # forks land at random instants of the thread's work
      client.enabled?(flag, { userId: made.to_s }) # the parent keeps evaluating: metrics to report
      flip(churn, on: (made / 100).even?) if (made % 100).zero?
      starting = start_another(url, starting) if (made % 50) == 25
      children[Forking.fork_child { storm_child(client, flag) }] = Forking.now
      made += 1
    end
    starting&.close(timeout: 2)
    drain_until = Forking.now + child_seconds + 10
    until children.empty? || Forking.now > drain_until
      sleep 0.005
      collect(child_seconds)
    end
    elapsed = Forking.now - started
    $stdout.puts("\nfork storm: #{made} forks in #{elapsed.round(1)} s, at most #{max_alive} children alive")

    errors = channel.messages.first(20)
    expect(problems).to be_empty, "#{problems.size} of #{made} children failed: #{problems.first(20).inspect}; " \
                                  "their errors: #{errors.inspect}"
    expect(children).to be_empty
    expect(made).to eq(forks)

    # The parent still serves and refreshes, with its own thread and no more.
    server.disable(flag)
    UnleashServer.wait_for(timeout: 1.01, interval: 0.01, message: "the parent to see #{flag} off") do
      !client.enabled?(flag)
    end
    stats = client.stats
    expect(stats).to include(thread_alive: true, state: :running, fork_generation: ForkSafe.generation)
    expect(stats[:refreshes]).to be > refreshes_before
    expect(ForkSafe.native_threads).to eq(threads_before[:native])
    expect(Thread.list.size).to eq(threads_before[:ruby])
    expect(tasks).to be <= threads_before[:tasks] + 2 # Ruby may keep an ended thread for reuse a while
    expect(JSON.parse(File.read(backup)).fetch("features").map { |f| f["name"] }).to include(flag, churn)
  end
end
