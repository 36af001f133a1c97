# frozen_string_literal: true

# Phusion Passenger 6.0 Standalone (Debian's package, its builtin engine)
# with smart spawning: a preloader loads examples/config.ru, which creates
# the client and requires forkflag/passenger, then forks 3 application
# processes. Against the real Unleash server.
RSpec.describe "Passenger 6.0 Standalone with require \"forkflag/passenger\"", :integration do
  include_context "server processes", "passenger"

  let(:watchdogs) { {} } # server => its watchdog's pid (the pid file is gone once it stops)

  # Before the shared cleanup (which removes the directory holding the
  # agent's log): the agent's log, and the processes outside the group.
  after do |example|
    servers.each do |server|
      if example.exception && File.exist?(agent_log(server))
        warn("passenger agent log:\n#{File.read(agent_log(server))[-6000..]}")
      end
      server.kill!
      passenger_processes(server).each { |pid| kill_quietly(pid) }
    end
  end

  def agent_log(server)
    File.join(server.dir, "agent.log")
  end

  # Passenger's agent leaves the process group of `passenger start`: its
  # watchdog (the pid file) leads a session of its own, which holds the
  # core, the preloader and the application processes; a helper that keeps
  # the temporary directory alive is a session of its own too, named by its
  # log file. All of them, found from /proc.
  def passenger_processes(server)
    watchdog = watchdogs[server]
    Dir.children("/proc").grep(/\A\d+\z/).map(&:to_i).select do |pid|
      session = File.read("/proc/#{pid}/stat").rpartition(")").last.split[3].to_i
      (watchdog && [pid, session].include?(watchdog)) ||
        File.read("/proc/#{pid}/cmdline").include?(agent_log(server))
    rescue SystemCallError
      false
    end
  end

  def kill_quietly(pid)
    Process.kill("KILL", pid)
  rescue SystemCallError
    nil
  end

  # Passenger Standalone stops on INT or TERM: it stops its engine (each
  # application process runs its stopping_worker_process hooks), prints
  # "Stopping web server... done" and exits with status 2 by design. Then
  # none of its processes may be left.
  def expect_passenger_stop(server, timeout: 30)
    status, _took, late = server.stop(signal: "INT", timeout: timeout)
    expect(late).to be(false), "INT did not stop Passenger within #{timeout}s:\n#{server.log[-3000..]}"
    expect(server.log).to include("Stopping web server... done")
    expect(status.exitstatus).to eq(2)
    deadline = ServerProcess.now + 20
    sleep 0.1 until passenger_processes(server).empty? || ServerProcess.now > deadline
    expect(passenger_processes(server)).to eq([]), "Passenger processes left after it stopped"
  end

  def boot(flags, variants, rackup: "examples/config.ru", env: nil)
    env ||= unleash_env(unleash, app_name: app_name, flags: flags, variants: variants,
                                 refresh_interval: refresh_interval)
    server = ServerProcess.new(name: "passenger", env: env) do |port, dir|
      [Gem.ruby, ServerProcess.executable("passenger"), "start", "--engine", "builtin",
       "--address", "127.0.0.1", "--port", port.to_s, "--spawn-method", "smart",
       "--max-pool-size", "3", "--min-instances", "3",
       "--pid-file", File.join(dir, "passenger.pid"), "--log-file", File.join(dir, "agent.log"),
       # Loopback only: no update check, no telemetry, nothing downloaded or compiled.
       "--disable-security-update-check", "--disable-anonymous-telemetry",
       "--no-install-runtime", "--no-compile-runtime",
       "--rackup", rackup]
    end
    serve(server)
    watchdogs[server] = Integer(File.read(File.join(server.dir, "passenger.pid")))
    server
  end

  it "serves a flip from every application process within refresh_interval + 1 s, reports exact metrics, " \
     "stops on INT (Ctrl-C)" do
    flag = create_off_flag(unleash, "passenger")
    banner = create_variant_flag(unleash, "passenger-banner")
    server = boot([flag], [banner])

    before = until_pids(server, 3)
    pids = before.map(&:pid).uniq
    expect(before.map { |r| r.flags[flag] }).to all(be(false))
    # Each application process was forked from the preloader, which made
    # the client, and runs its own thread; starting_worker_process started
    # its log thread too, before its first request.
    expect(before.map { |r| r.body["generation"] }.uniq).to eq([1])
    expect(before.last(3).map { |r| r.body["native_threads"] }).to all(eq(1))
    expect(before.map { |r| r.body["log_thread"] }.uniq).to eq([true])

    unleash.flip(flag, on: true)
    flipped_at = ServerProcess.now
    delays, after = expect_flip_everywhere(server, pids, flag, true, flipped_at: flipped_at, bound: bound)
    responses = before + after
    expect(responses.map(&:pid).uniq.sort).to eq(pids.sort) # no process replaced
    warn("passenger: flip seen by each application process after #{delays.values.map { |d| d.round(2) }.sort} s")

    # Metrics every 120 s: what the server has came from each application
    # process's stopping_worker_process hook.
    expect_passenger_stop(server)
    expect_server_metrics(unleash, app_name, evaluations_made(responses), unanswered: server.unanswered)
  end

  it "replaces a KILLed application process with one forked from the preloader, serving the current flags" do
    flag = create_off_flag(unleash, "passenger-kill")
    server = boot([flag], [])

    pids = until_pids(server, 3).map(&:pid).uniq
    unleash.flip(flag, on: true)
    expect_flip_everywhere(server, pids, flag, true, flipped_at: ServerProcess.now, bound: bound)

    victim = pids.first
    Process.kill("KILL", victim)
    killed_at = ServerProcess.now
    replaced = server.request_until(timeout: 30, what: "a new application process serving") do |seen|
      seen.any? { |r| !pids.include?(r.pid) }
    end
    newcomer = replaced.find { |r| !pids.include?(r.pid) }
    expect(newcomer.body["generation"]).to eq(1)
    _delays, later = expect_flip_everywhere(server, [newcomer.pid], flag, true, flipped_at: killed_at, bound: 1.0)
    first_answers = (replaced + later).select { |r| r.pid == newcomer.pid }.first(3).map { |r| r.flags[flag] }
    warn("passenger: the new application process's first answers: #{first_answers}")

    expect_passenger_stop(server)
  end

  it "runs the official README's Passenger recipe on forkflag/unleash: a client per process, exact metrics" do
    flag = create_off_flag(unleash, "passenger-unleash")
    env = { "UNLEASH_RECIPE" => "passenger", "UNLEASH_URL" => unleash.url, "UNLEASH_TOKEN" => unleash.client_token,
            "UNLEASH_APP_NAME" => app_name, "UNLEASH_REFRESH_INTERVAL" => refresh_interval, "UNLEASH_FLAGS" => flag }
    server = boot([flag], [], rackup: "examples/unleash/config.ru", env: env)

    before = until_pids(server, 3, where: ->(r) { r.body["ready"] })
    pids = before.map(&:pid).uniq
    flipped_at = unleash.flip(flag, on: true) - Process.clock_gettime(Process::CLOCK_REALTIME) + ServerProcess.now
    _delays, after = expect_flip_everywhere(server, pids, flag, true, flipped_at: flipped_at, bound: bound)

    expect_passenger_stop(server)
    expect_server_metrics(unleash, app_name, evaluations_made(before + after), unanswered: server.unanswered)
  end
end
