# frozen_string_literal: true

require "socket"
require "timeout"
require "tmpdir"
require "rbconfig"

RSpec.describe "Forkflag::Client lifecycle" do
  include FlagPayloads

  let(:log) { StringIO.new }
  let(:logger) { Logger.new(log) }

  # A server that accepts connections and never answers.
  def with_silent_server
    server = TCPServer.new("127.0.0.1", 0)
    held = []
    acceptor = Thread.new do
      loop { held << server.accept }
    rescue IOError, Errno::EBADF
      nil
    end
    yield "http://127.0.0.1:#{server.addr[1]}/api"
  ensure
    server&.close
    acceptor&.join(5)
    held&.each(&:close)
  end

  def monotonic
    Process.clock_gettime(Process::CLOCK_MONOTONIC)
  end

  # Runs `script` in a new Ruby process with this checkout's lib on the load
  # path; returns what it printed.
  def run_ruby(script)
    IO.popen([RbConfig.ruby, "-I", File.expand_path("../../lib", __dir__), "-e", script], &:read)
  end

  describe "a file: source" do
    it "is re-read when the file changes, and a bad edit keeps the last good flags" do
      with_flags_file(payload(flag("f", enabled: false))) do |path|
        client = Forkflag::Client.new(file: path, refresh_interval: 0.1, logger: logger)
        expect(client.wait_until_ready(5)).to be(true)
        expect(client.enabled?("f")).to be(false)

        File.write("#{path}.tmp", payload(flag("f", enabled: true)))
        File.rename("#{path}.tmp", path)
        deadline = monotonic + 5
        sleep 0.05 until client.enabled?("f") || monotonic > deadline
        expect(client.enabled?("f")).to be(true)

        File.write(path, "{ not json")
        deadline = monotonic + 5
        until log.string.include?("flags file") || monotonic > deadline
          sleep 0.05
          Forkflag::Logging.drain
        end
        expect(log.string).to include("flags file #{path}: invalid flags payload")
        expect(client.enabled?("f")).to be(true)
        client.close
      end
    end
  end

  describe "#wait_until_ready" do
    it "times out, returning false, while the server does not answer" do
      with_silent_server do |url|
        client = Forkflag::Client.new(url: url, token: "t", app_name: "a", timeout: 5, backup_path: false,
                                      logger: logger)
        started = monotonic
        expect(client.wait_until_ready(timeout: 0.3)).to be(false)
        expect(client.wait_until_ready(0.3)).to be(false) # the positional form of earlier versions
        expect(monotonic - started).to be < 5
        expect { client.wait_until_ready(1, timeout: 1) }.to raise_error(ArgumentError, /give the timeout once/)
        client.close(timeout: 0.5)
      end
    end

    it "can be interrupted by Thread#kill, Thread#raise and Timeout while waiting" do
      with_silent_server do |url|
        client = Forkflag::Client.new(url: url, token: "t", app_name: "a", timeout: 30, backup_path: false,
                                      logger: logger)
        waiter = Thread.new { client.wait_until_ready }
        sleep 0.2
        expect(waiter.join(0.1)).to be_nil
        waiter.kill
        expect(waiter.join(5)).to eq(waiter)

        raiser = Thread.new do
          client.wait_until_ready
        rescue StandardError => e
          e
        end
        sleep 0.2
        raiser.raise(RuntimeError, "stop waiting")
        expect(raiser.join(5)&.value&.message).to eq("stop waiting")

        expect { Timeout.timeout(0.3) { client.wait_until_ready } }.to raise_error(Timeout::Error)
        client.close(timeout: 0.5)
      end
    end

    it "lets other Ruby threads run while it waits" do
      with_silent_server do |url|
        client = Forkflag::Client.new(url: url, token: "t", app_name: "a", timeout: 30, backup_path: false,
                                      logger: logger)
        ticks = 0
        ticker = Thread.new do
          20.times do
            ticks += 1
            sleep(0.01)
          end
        end
        client.wait_until_ready(0.5)
        ticker.join(5)
        expect(ticks).to eq(20)
        client.close(timeout: 0.5)
      end
    end
  end

  describe "#close" do
    it "is bounded by its timeout even when the server hangs" do
      with_silent_server do |url|
        client = Forkflag::Client.new(url: url, token: "t", app_name: "a", timeout: 30, backup_path: false,
                                      bootstrap: payload(flag("f")), logger: logger)
        client.enabled?("f")
        started = monotonic
        expect(client.close(timeout: 0.3)).to be(false)
        expect(monotonic - started).to be < 3
        expect(client).to be_closed
        expect(client.enabled?("f")).to be(true)
      end
    end
  end

  describe "#park" do
    it "stops the thread, keeps the flags, and restarts on first use" do
      with_flags_file do |path|
        client = Forkflag::Client.new(file: path, refresh_interval: 0.1, logger: logger)
        client.wait_until_ready(5)
        expect(client.stats[:state]).to eq(:running)
        expect(client.park).to be(true)
        expect(client.stats).to include(state: :parked, thread_alive: false)
        expect(client.enabled?("f")).to be(true)
        expect(client.stats).to include(state: :running, thread_alive: true)
        client.close
        expect(client.stats[:state]).to eq(:closed)
      end
    end
  end

  it "closes clients still open at exit, leaving no forkflag thread behind" do
    with_flags_file do |path|
      script = <<~RUBY
        # Registered first, so it runs last: after forkflag's own at_exit.
        at_exit do
          tasks = Dir.children("/proc/self/task").map { |t| File.read("/proc/self/task/\#{t}/comm").strip }
          puts({ closed: $client.closed?, tasks: tasks }.inspect)
        end
        require "forkflag"
        $client = Forkflag::Client.new(file: #{path.inspect}, refresh_interval: 0.1)
        $client.wait_until_ready(5)
      RUBY
      out = run_ruby(script)
      expect(out).to include(":closed=>true")
      expect(out).not_to include("forkflag-worker")
    end
  end

  it "answers in a forked child without starting a Ruby thread, and starts one once a message waits" do
    with_flags_file do |path|
      script = <<~RUBY
        require "forkflag"
        require "logger"
        require "stringio"
        log = StringIO.new
        client = Forkflag::Client.new(file: #{path.inspect}, refresh_interval: 0.05, backup_path: false,
                                      logger: Logger.new(log))
        abort "not ready" unless client.wait_until_ready(5)
        reader, writer = IO.pipe
        pid = fork do
          ruby_threads = Thread.list.size
          first = client.enabled?("f")
          after_first = [Thread.list.size - ruby_threads, client.stats[:state], Forkflag::Logging.thread]
          File.write(#{path.inspect}, "{ not json")
          deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + 10
          until log.string.include?("refresh failed") || Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline
            client.enabled?("f")
            sleep 0.02
          end
          writer.puts({ first: first, after_first: after_first, logged: log.string[/refresh failed/],
                        log_thread: Forkflag::Logging.thread&.alive? }.inspect)
          exit!(0)
        end
        writer.close
        puts reader.read
        Process.wait(pid)
        client.close
      RUBY
      out = run_ruby(script)
      # The first answer started the native thread only; the child's thread
      # then failed to read the file, and an evaluation started the Ruby
      # thread that delivered the message to the logger.
      expect(out).to include(":first=>true, :after_first=>[0, :running, nil]")
      expect(out).to include(':logged=>"refresh failed", :log_thread=>true')
    end
  end

  it "lets go of the threads of clients dropped without close once they are garbage collected" do
    with_flags_file do |path|
      script = <<~RUBY
        require "forkflag"
        clients = Array.new(3) { Forkflag::Client.new(file: #{path.inspect}, refresh_interval: 0.1) }
        clients.each { |c| c.enabled?("f") }
        # A thread names itself once running: wait (bounded) for the names.
        named_by = Process.clock_gettime(Process::CLOCK_MONOTONIC) + 5
        sleep 0.01 until ForkSafe.native_threads == 3 || Process.clock_gettime(Process::CLOCK_MONOTONIC) > named_by
        before = [ForkSafe.native_threads, Forkflag::Logging.thread&.alive?]
        clients = nil # dropped without close
        deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + 10
        until (ForkSafe.native_threads.zero? && !Forkflag::Logging.thread) ||
              Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline
          GC.start
          sleep 0.05
        end
        p(before: before, after: [ForkSafe.native_threads, Forkflag::Logging.thread&.alive?])
      RUBY
      out = run_ruby(script)
      expect(out).to include(":before=>[3, true]")
      expect(out).to include(":after=>[0, nil]")
    end
  end
end
