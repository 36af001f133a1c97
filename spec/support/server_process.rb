# frozen_string_literal: true

require "json"
require "net/http"
require "securerandom"
require "socket"
require_relative "../../support/loopback"
require "tmpdir"

# A real server process for the integration specs (Puma, Unicorn,
# Pitchfork, Passenger): spawned in its own process group with its output in a log
# file, waited for with a deadline, stopped with a signal and a deadline
# (then KILL for the whole group), and killed whatever happens through
# #kill!, which callers put in an ensure/after.
class ServerProcess
  ROOT = File.expand_path("../..", __dir__)
  LIB = File.join(ROOT, "lib")

  class Error < StandardError; end

  # A response of the example app, with when it was asked and answered.
  Response = Struct.new(:body, :started_at, :finished_at, keyword_init: true) do
    def pid = body.fetch("pid")
    def flags = body.fetch("flags")
  end

  attr_reader :port, :pid, :log_path, :dir

  # Requests that may have reached the application without an answer
  # reaching the test (a 5xx, a connection closed or timed out after it was
  # sent): the application may have evaluated its flags for them.
  def unanswered
    @unanswered_lock.synchronize { @unanswered }
  end

  # The path of a server's command (puma, unicorn, pitchfork) on PATH.
  def self.executable(name)
    dirs = ENV.fetch("PATH", "").split(File::PATH_SEPARATOR)
    found = dirs.map { |dir| File.join(dir, name) }.find { |path| File.file?(path) && File.executable?(path) }
    found or raise Error, "#{name} is not on PATH (#{dirs.join(":")})"
  end

  def self.now
    Process.clock_gettime(Process::CLOCK_MONOTONIC)
  end

  # @param argv [Array<String>] the command (run from the repository root),
  #   or nil with a block that builds it from the chosen port and the
  #   server's temporary directory
  # @param env [Hash] extra environment; PORT is set to the chosen port
  def initialize(argv = nil, env: {}, name: "server")
    @port = Loopback.free_port
    @dir = Dir.mktmpdir("forkflag-#{name}-")
    @log_path = File.join(@dir, "#{name}.log")
    @argv = block_given? ? yield(@port, @dir) : argv
    rubylib = [LIB, ENV.fetch("RUBYLIB", nil)].compact.join(":")
    @env = { "PORT" => @port.to_s, "HOST" => "127.0.0.1", "RUBYLIB" => rubylib }
           .merge(env.transform_values { |v| v&.to_s })
    @unanswered = 0
    @unanswered_lock = Mutex.new
  end

  def start
    @pid = Process.spawn(@env, *@argv, chdir: ROOT, pgroup: true, in: File::NULL, out: @log_path,
                                       err: %i[child out])
    self
  end

  def log
    File.exist?(@log_path) ? File.read(@log_path) : ""
  end

  # Waits until the server answers (200), at most timeout seconds.
  def wait_until_serving(timeout: 30, path: "/")
    deadline = self.class.now + timeout
    loop do
      raise Error, "server exited while booting (#{@status.inspect}):\n#{log}" if exited?

      begin
        return get(path) if self.class.now < deadline
      rescue SystemCallError, IOError, Net::ReadTimeout, Net::OpenTimeout
        sleep 0.1
        next
      end
      raise Error, "server not answering on port #{@port} after #{timeout}s:\n#{log}"
    end
  end

  # One request on a new connection; the app's JSON.
  def get(path = "/", timeout: 5)
    started = self.class.now
    res = Net::HTTP.start("127.0.0.1", @port, open_timeout: timeout, read_timeout: timeout) do |http|
      http.get(path, "Connection" => "close")
    end
    raise Error, "GET #{path} -> #{res.code}: #{res.body[0, 500]}" unless res.code == "200"

    Response.new(body: JSON.parse(res.body), started_at: started, finished_at: self.class.now)
  end

  # Requests from several threads until the block returns true for the
  # responses so far (bounded); returns them.
  def request_until(timeout:, what:, threads: 3, &done)
    responses = Queue.new
    deadline = self.class.now + timeout
    stop = [false]
    workers = Array.new(threads) { |i| Thread.new { request_loop(i, responses, deadline, stop) } }
    seen = []
    until done.call(seen.concat(drain(responses)))
      check_waiting(deadline, timeout, what, seen)
      sleep 0.01
    end
    seen
  ensure
    stop[0] = true
    workers&.each { |t| t.join(10) || t.kill }
    seen&.concat(drain(responses))
  end

  def check_waiting(deadline, timeout, what, seen)
    raise Error, "timed out after #{timeout}s waiting for #{what}; #{seen.size} responses" if self.class.now > deadline
    raise Error, "server exited (#{@status.inspect}):\n#{log}" if exited?
  end

  def drain(queue)
    Array.new(queue.size) { queue.pop }
  end

  def request_loop(thread, responses, deadline, stop)
    n = 0
    until stop[0] || self.class.now > deadline
      begin
        responses << get("/?user=#{thread}-#{n += 1}")
      rescue Error, SystemCallError, IOError, Net::ReadTimeout, Net::OpenTimeout => e
        # Never connected: the application did not see it.
        unless e.is_a?(Net::OpenTimeout) || e.is_a?(Errno::ECONNREFUSED)
          @unanswered_lock.synchronize { @unanswered += 1 }
        end
        sleep 0.05 # a worker restarting; the deadline bounds the retries
      end
      sleep 0.01
    end
  end

  def exited?
    return true if @status

    _, @status = Process.waitpid2(@pid, Process::WNOHANG)
    !@status.nil?
  end

  # Sends a signal to the master.
  def signal(name)
    Process.kill(name, @pid)
  end

  # Sends the signal and waits for the master to exit, at most timeout
  # seconds; then kills the group. Returns [status, seconds taken, late].
  def stop(signal: "TERM", timeout: 20)
    started = self.class.now
    signal(signal) unless exited?
    until exited?
      if self.class.now - started > timeout
        kill!
        return [@status, self.class.now - started, true]
      end
      sleep 0.02
    end
    [@status, self.class.now - started, false]
  end

  # Whether any process of the group (workers included) is still alive.
  def group_alive?
    Process.kill(0, -@pid)
    true
  rescue Errno::ESRCH
    false
  end

  # Waits (bounded) until the whole group is gone.
  def wait_group_gone(timeout: 10)
    deadline = self.class.now + timeout
    sleep 0.02 while group_alive? && self.class.now < deadline
    !group_alive?
  end

  # KILLs the whole group and reaps the master (for ensure/after).
  def kill!
    return unless @pid

    begin
      Process.kill("KILL", -@pid)
    rescue Errno::ESRCH, Errno::EPERM
      nil
    end
    deadline = self.class.now + 5
    sleep 0.01 until exited? || self.class.now > deadline
  end

  def cleanup
    kill!
    FileUtils.rm_rf(@dir)
  end
end

# What the server specs check, on the example app's responses.
module ServerChecks
  # Every FORKFLAG_* source variable unset (nil unsets in Process.spawn).
  EXAMPLE_ENV_UNSET = Forkflag::ENV_OPTIONS.keys.to_h { |k| [k, nil] }
                                           .merge("FORKFLAG_EXAMPLE_FLAGS" => nil, "FORKFLAG_EXAMPLE_VARIANTS" => nil)
                                           .freeze

  # Environment for the example app against the real Unleash server.
  def unleash_env(unleash, app_name:, flags:, variants: [], refresh_interval: 0.5, workers: 3)
    {
      "FORKFLAG_URL" => unleash.url, "FORKFLAG_TOKEN" => unleash.client_token, "FORKFLAG_APP_NAME" => app_name,
      "FORKFLAG_REFRESH_INTERVAL" => refresh_interval, "FORKFLAG_METRICS_INTERVAL" => 120,
      "FORKFLAG_TIMEOUT" => 3, "FORKFLAG_BACKUP_PATH" => "false", "FORKFLAG_FILE" => nil,
      "FORKFLAG_EXAMPLE_FLAGS" => flags.join(","), "FORKFLAG_EXAMPLE_VARIANTS" => variants.join(","),
      "WORKERS" => workers
    }
  end

  # A flag with the default strategy, off in the development environment.
  def create_off_flag(unleash, prefix)
    name = "#{prefix}-#{SecureRandom.hex(4)}"
    unleash.create_flag(name)
    unleash.add_strategy(name, strategy_name: "default")
    name
  end

  # A flag on for everyone with two strategy variants.
  def create_variant_flag(unleash, prefix)
    name = "#{prefix}-#{SecureRandom.hex(4)}"
    unleash.create_flag(name)
    unleash.add_strategy(name, strategy_name: "flexibleRollout",
                               parameters: { "rollout" => "100", "stickiness" => "default", "groupId" => name },
                               variants: %w[red green].map do |v|
                                 { name: v, weight: 500, weightType: "variable", stickiness: "default" }
                               end)
    unleash.enable(name)
    name
  end

  # Requests until count distinct worker pids answered; returns the
  # responses.
  def until_pids(server, count, timeout: 30, where: nil)
    server.request_until(timeout: timeout, what: "#{count} workers answering") do |seen|
      seen.select { |r| where.nil? || where.call(r) }.map(&:pid).uniq.size >= count
    end
  end

  # Requests until each pid answered the flag with value, and checks that
  # each served it within bound seconds of flipped_at: no response asked
  # after that showed the old value. Returns [{pid => seconds after the
  # flip of its first answer with the new value}, the responses]. Those
  # delays include how long the server took to route a request to the
  # process (Passenger sends requests to the least busy one, and a fast
  # machine may not ask a third process for seconds; a respawned one
  # answers only once spawned), so they are reported, not bounded.
  def expect_flip_everywhere(server, pids, flag, value, flipped_at:, bound:, timeout: 30)
    seen = server.request_until(timeout: timeout, what: "#{pids.size} workers serving #{flag}=#{value}") do |rs|
      (pids - rs.select { |r| r.flags[flag] == value }.map(&:pid)).empty?
    end
    late = seen.select { |r| r.started_at > flipped_at + bound && r.flags[flag] != value }
    expect(late.map { |r| [r.pid, r.started_at - flipped_at] }).to eq([]), "workers still serving the old value"
    [flip_delays(seen, pids, flag, value, flipped_at), seen]
  end

  def flip_delays(responses, pids, flag, value, flipped_at)
    pids.to_h do |pid|
      [pid, responses.select { |r| r.pid == pid && r.flags[flag] == value }.map(&:finished_at).min - flipped_at]
    end
  end

  # The evaluations each process reported last: {flag => {yes:, no:}} summed
  # over the processes (all, or those in pids).
  def evaluations_made(responses, pids: nil)
    last = responses.group_by(&:pid).transform_values { |rs| rs.max_by { |r| r.body["requests"] } }
    last.select! { |pid, _| pids.include?(pid) } if pids
    totals = Hash.new { |h, k| h[k] = { yes: 0, no: 0 } }
    last.each_value { |r| add_counts(totals, r.body["evaluations"]) }
    totals.to_h
  end

  def add_counts(totals, evaluations)
    evaluations.each do |flag, c|
      totals[flag][:yes] += c["yes"]
      totals[flag][:no] += c["no"]
    end
  end

  # Waits (bounded) until the flag server's yes/no totals for app_name
  # match what the application processes reported, then checks them. A
  # request the application may have evaluated without its answer reaching
  # the test (`unanswered`, Passenger's "Incomplete response received from
  # application") adds one evaluation per flag that no response showed:
  # each flag's total may then exceed the expected by at most that many,
  # never fall short of it; with none, the totals must equal it.
  def expect_server_metrics(unleash, app_name, expected, timeout: 15, unanswered: 0)
    actual = nil
    begin
      unleash.wait_for(timeout: timeout, interval: 0.25, message: "metrics #{expected}") do
        actual = expected.keys.to_h { |f| [f, unleash.yes_no_totals(f, app_name: app_name).slice(:yes, :no)] }
        metrics_within?(actual, expected, unanswered)
      end
    rescue UnleashServer::TimeoutError
      nil
    end
    if unanswered.zero?
      expect(actual).to eq(expected)
    else
      message = "metrics #{actual} against #{expected} (#{unanswered} requests unanswered)"
      expect(!actual.nil? && metrics_within?(actual, expected, unanswered)).to be(true), message
    end
  end

  # Whether each flag's totals are the expected ones plus at most
  # `unanswered` evaluations.
  def metrics_within?(actual, expected, unanswered)
    expected.all? do |flag, want|
      have = actual.fetch(flag)
      extra = (have[:yes] + have[:no]) - (want[:yes] + want[:no])
      have[:yes] >= want[:yes] && have[:no] >= want[:no] && extra.between?(0, unanswered)
    end
  end

  # Stops the server; it must exit by itself, successfully, within timeout.
  def expect_clean_stop(server, signal:, timeout:)
    status, took, late = server.stop(signal: signal, timeout: timeout)
    expect(late).to be(false), "#{signal} did not stop the server within #{timeout}s:\n#{server.log[-3000..]}"
    # Puma re-raises TERM once it has shut down: ending by the signal sent
    # is a clean exit too.
    clean = status.success? || status.termsig == Signal.list.fetch(signal.delete_prefix("SIG"))
    expect(clean).to be(true), "exit status #{status.inspect}:\n#{server.log[-3000..]}"
    expect(server.wait_group_gone(timeout: 10)).to be(true), "workers left after the master exited"
    took
  end
end

# What every server spec sets up: the real Unleash server, an app name of
# its own, the refresh interval and the bound a flip must be seen within,
# and the servers the example started, whose log is shown when it fails and
# which are killed after it. A spec's own `after` runs before this one.
RSpec.shared_context "server processes" do |name|
  include ServerChecks

  let(:unleash) { UnleashServer.instance }
  let(:app_name) { "forkflag-#{name}-#{SecureRandom.hex(4)}" }
  let(:refresh_interval) { 0.5 }
  let(:bound) { refresh_interval + 1.0 }
  let(:servers) { [] }

  after do |example|
    servers.each do |server|
      warn("#{name} log:\n#{server.log[-6000..] || server.log}") if example.exception
      server.cleanup
    end
  end

  # Starts the server (cleaned up after the example) and waits until it
  # serves; returns its first response.
  def serve(server)
    servers << server
    server.start.wait_until_serving
  end
end
