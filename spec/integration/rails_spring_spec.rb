# frozen_string_literal: true

require "json"
require "securerandom"
require "tmpdir"

# One command run through examples/rails_app/bin/spring: stdout read as it
# comes (script/watch_flag.rb prints JSON lines), stderr to a file.
class RailsSpringCommand
  attr_reader :pid

  def initialize(env, args, chdir:, stderr_path:)
    @stderr_path = stderr_path
    @reader, writer = IO.pipe
    spawn = -> { Process.spawn(env, *args, chdir: chdir, in: File::NULL, out: writer, err: stderr_path) }
    @pid = defined?(Bundler) ? Bundler.with_unbundled_env(&spawn) : spawn.call
    writer.close
    @output = +""
    @pending = +""
    @lines = []
  end

  # Waits (bounded) for the JSON line with this event.
  def event(name, timeout:)
    deadline = Forking.now + timeout
    loop do
      found = @lines.find { |l| l[:event] == name }
      return found if found
      if Forking.now > deadline
        raise "no #{name.inspect} from #{@pid} within #{timeout}s; got #{@lines.inspect}\n#{stderr}"
      end

      read_some(deadline)
    end
  end

  # What the command printed on stdout (read until it is closed, bounded).
  def output(timeout: 10)
    deadline = Forking.now + timeout
    read_some(deadline) until @reader.closed? || Forking.now > deadline
    @output
  end

  def wait(timeout:)
    status, late = Forking.reap(@pid, deadline: Forking.now + timeout)
    raise "spring command #{@pid} did not end within #{timeout}s\n#{stderr}" if late

    status
  end

  def stderr
    File.exist?(@stderr_path) ? File.read(@stderr_path) : ""
  end

  # Reaps the command if it is still there (INT, then KILL).
  def kill
    Forking.reap(@pid, deadline: Forking.now) unless Process.waitpid(@pid, Process::WNOHANG)
  rescue Errno::ECHILD
    nil
  ensure
    @reader.close unless @reader.closed?
  end

  private

  def read_some(deadline)
    return if @reader.closed?

    @reader.wait_readable([deadline - Forking.now, 0.01].max)
    chunk = @reader.read_nonblock(65_536, exception: false)
    return if chunk == :wait_readable
    return @reader.close if chunk.nil?

    @output << chunk
    @pending << chunk
    while (line = @pending.slice!(/\A[^\n]*\n/))
      @lines << JSON.parse(line, symbolize_names: true) if line.start_with?("{")
    end
  end
end

# examples/rails_app (Rails 6.1, forkflag's Railtie) under a real Spring 2.1
# against the real Unleash server: `spring rails runner` twice, both forked
# from the one preloaded application process, and `spring rspec` through
# spring-commands-rspec. Spring runs with a private socket directory and is
# stopped (then killed, with a deadline) after each example.
RSpec.describe "Rails app under Spring", :integration do
  let(:app_root) { File.expand_path("../../examples/rails_app", __dir__) }
  let(:server) { UnleashServer.instance }
  let!(:app_name) { "forkflag-rails-#{SecureRandom.hex(4)}" }
  let(:prefix) { "rails-#{SecureRandom.hex(4)}-" }
  let(:tmp) { Dir.mktmpdir("forkflag-spring") }
  let(:socket) { File.join(tmp, "spring.sock") }
  let(:refresh_interval) { 0.5 }
  let(:commands) { [] }

  after do
    stop_spring
    commands.each(&:kill)
    FileUtils.rm_rf(tmp)
  end

  def spring_env
    {
      "SPRING_TMP_PATH" => tmp, "SPRING_SOCKET" => socket, "SPRING_LOG" => File.join(tmp, "spring.log"),
      # Spring runs each command in the client's PWD.
      "PWD" => app_root, "BUNDLE_GEMFILE" => File.join(app_root, "Gemfile"), "DISABLE_SPRING" => nil,
      "RAILS_ENV" => nil, "RACK_ENV" => nil, "FORKFLAG_URL" => server.url, "FORKFLAG_TOKEN" => server.client_token,
      "FORKFLAG_APP_NAME" => app_name, "FORKFLAG_REFRESH_INTERVAL" => refresh_interval.to_s,
      "FORKFLAG_METRICS_INTERVAL" => "60", "FORKFLAG_TIMEOUT" => "3", "FORKFLAG_BACKUP_PATH" => "false",
      # Only this example's flags, not those other specs leave on the shared server.
      "FORKFLAG_NAME_PREFIX" => prefix
    }
  end

  def spring(*args)
    command = RailsSpringCommand.new(spring_env, [RbConfig.ruby, "bin/spring", *args],
                                     chdir: app_root, stderr_path: File.join(tmp, "stderr-#{commands.size}.log"))
    commands << command
    command
  end

  # Processes of this example's Spring (server, applications, commands):
  # those whose environment names its socket.
  def spring_pids
    marker = "SPRING_SOCKET=#{socket}"
    Dir.children("/proc").grep(/\A\d+\z/).map(&:to_i).select do |pid|
      pid != Process.pid && File.binread("/proc/#{pid}/environ").split("\0").include?(marker)
    rescue SystemCallError
      false
    end
  end

  def alive?(pid)
    Process.kill(0, pid)
    !File.read("/proc/#{pid}/stat").split[2].start_with?("Z")
  rescue Errno::ESRCH, Errno::ENOENT
    false
  end

  def stop_spring
    stop = spring("stop")
    stop.wait(timeout: 20)
  rescue StandardError => e
    warn("spring stop: #{e.message}")
  ensure
    leftovers = spring_pids
    deadline = Forking.now + 5
    sleep 0.05 while leftovers.any? { |pid| alive?(pid) } && Forking.now < deadline
    Forking.kill_all(leftovers.select { |pid| alive?(pid) })
  end

  def realtime
    Process.clock_gettime(Process::CLOCK_REALTIME)
  end

  it "forks both `rails runner` runs from one preloaded app; each sees a flip in time and reports its metrics" do
    flag = "#{prefix}checkout"
    server.create_flag(flag)
    server.add_strategy(flag, strategy_name: "default")

    first = spring("rails", "runner", "script/watch_flag.rb", flag, "true", "30")
    start1 = first.event("start", timeout: 180)
    expect(start1).to include(value: false, known: true, source: "url", env: "development", spring_hook: true)
    flipped_at = server.flip(flag, on: true)
    saw1 = first.event("saw", timeout: 15)
    done1 = first.event("done", timeout: 15)
    expect(first.wait(timeout: 30).exitstatus).to eq(0), first.stderr

    flipped_back_at = server.flip(flag, on: false)
    second = spring("rails", "runner", "script/watch_flag.rb", flag, "false", "30")
    start2 = second.event("start", timeout: 60)
    saw2 = second.event("saw", timeout: 15)
    done2 = second.event("done", timeout: 15)
    expect(second.wait(timeout: 30).exitstatus).to eq(0), second.stderr

    # Two processes forked from the same Spring application process, which
    # stays alive between them.
    expect(start2[:pid]).not_to eq(start1[:pid])
    expect(start2[:ppid]).to eq(start1[:ppid])
    expect(File.binread("/proc/#{start1[:ppid]}/cmdline")).to include("spring")
    expect(first.stderr + second.stderr).to include("Running via Spring preloader in process #{start2[:pid]}")
    expect([start1[:fork_generation], start2[:fork_generation]]).to all(be >= 1)

    limit = refresh_interval + 1
    expect(saw1[:at] - flipped_at).to be < limit
    expect(saw2[:at] - [flipped_back_at, start2[:at]].max).to be < limit

    evaluations = { yes: done1[:yes] + done2[:yes], no: done1[:no] + done2[:no] }
    expect(evaluations[:yes] + evaluations[:no]).to eq(done1[:evaluations] + done2[:evaluations])
    server.settled_totals(flag, evaluations, app_name: app_name)
    sleep 1 # anything sent twice would arrive now
    expect(server.yes_no_totals(flag, app_name: app_name).slice(:yes, :no))
      .to eq(evaluations), "runs: #{[start1, done1, start2, done2].inspect}"

    # `spring stop` ends the server and the preloaded app within Spring's own timeout.
    expect(spring("stop").wait(timeout: 20).exitstatus).to eq(0)
    UnleashServer.wait_for(timeout: 10, message: "Spring's processes gone") { spring_pids.none? { |pid| alive?(pid) } }
    expect(alive?(start1[:ppid])).to be(false)
  end

  it "builds the client from config/flags.json by default, and FORKFLAG_* variables win over config.forkflag" do
    code = <<~RUBY
      c = Forkflag.client.config
      puts JSON.generate(event: "config", file: c.file, url: c.url, app_name: c.app_name, refresh: c.refresh_interval,
                         rails_logger: c.logger.equal?(Rails.logger), checkout: Forkflag.enabled?("new-checkout"),
                         banner: Forkflag.variant("banner").name)
    RUBY
    unset = Forkflag::ENV_OPTIONS.keys.to_h { |k| [k, nil] }
    base = unset.merge("PWD" => app_root, "BUNDLE_GEMFILE" => File.join(app_root, "Gemfile"), "DISABLE_SPRING" => "1",
                       "RAILS_ENV" => nil, "RACK_ENV" => nil)
    fixture = File.expand_path("../fixtures/rails_app/flags.json", __dir__)
    runs = [base, base.merge("FORKFLAG_FILE" => fixture, "FORKFLAG_REFRESH_INTERVAL" => "2")].map do |env|
      command = RailsSpringCommand.new(env, [RbConfig.ruby, "bin/rails", "runner", code],
                                       chdir: app_root, stderr_path: File.join(tmp, "stderr-#{commands.size}.log"))
      commands << command
      expect(command.wait(timeout: 120).exitstatus).to eq(0), command.stderr
      command.event("config", timeout: 5)
    end
    expect(runs[0]).to include(file: File.join(app_root, "config/flags.json"), url: nil, app_name: "rails_app",
                               refresh: 15, rails_logger: true, checkout: false, banner: "blue")
    expect(runs[1]).to include(file: fixture, refresh: 2.0, app_name: "rails_app", checkout: true, banner: "disabled")
  end

  it "runs the app's request spec through `spring rspec` (spring-commands-rspec), green" do
    rspec = spring("rspec", "--format", "progress")
    status = rspec.wait(timeout: 240)
    output = rspec.output
    expect(status.exitstatus).to eq(0), "#{output}\n#{rspec.stderr}"
    expect(output).to match(/\b4 examples, 0 failures\b/)
    expect(rspec.stderr).to match(/Running via Spring preloader in process \d+/)
    expect(spring_pids).not_to be_empty # the preloaded test app stays for the next run
  end
end
