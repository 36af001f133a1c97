# frozen_string_literal: true

require "cgi"
require "json"
require "net/http"
require "rbconfig"
require_relative "../loopback"

# The demo's server process and its load.
module Demo
  # Puma, started in its own process group and stopped with a deadline.
  class Puma
    attr_reader :port, :log

    def initialize(env)
      @port = Loopback.free_port
      @log = File.join(WORK, "puma.log")
      env = env.merge("PORT" => @port.to_s, "WORKERS" => WORKERS.to_s, "FORK_WORKER" => "0",
                      "RACK_ENV" => "production")
      puma = Gem.bin_path("puma", "puma")
      # Run from tmp/demo (no Gemfile there): the app loads the installed gem.
      @pid = Process.spawn(env, RbConfig.ruby, puma, "-C", File.join(ROOT, "examples/puma.rb"),
                           File.join(ROOT, "examples/config.ru"),
                           chdir: WORK, pgroup: true, out: @log, err: @log, in: File::NULL)
    end

    def alive?
      Process.waitpid(@pid, Process::WNOHANG).nil?
    rescue Errno::ECHILD
      false
    end

    # Stops Puma (TERM, then KILL after 20 s); returns seconds taken and whether it was clean.
    def stop
      started = Demo.now
      signal("TERM")
      until Demo.now - started > 20
        _, status = Process.waitpid2(@pid, Process::WNOHANG)
        # Puma ends a graceful TERM stop by re-raising TERM on itself.
        return [Demo.now - started, status.success? || status.termsig == Signal.list["TERM"]] if status

        sleep 0.05
      end
      signal("KILL", group: true)
      Process.waitpid(@pid)
      [Demo.now - started, false]
    end

    def signal(name, group: false)
      Process.kill(name, group ? -@pid : @pid)
    rescue Errno::ESRCH
      nil
    end
  end

  # Sends requests from a few threads; returns parsed answers.
  class Driver
    def initialize(port)
      @port = port
    end

    # One request on a new connection (a kept-alive one would stay with
    # the worker that accepted it).
    def get
      res = Net::HTTP.start("127.0.0.1", @port, open_timeout: 2, read_timeout: 5) do |http|
        http.get("/?user=demo-user")
      end
      JSON.parse(res.body) if res.code == "200"
    rescue SystemCallError, IOError, Net::ReadTimeout, Net::OpenTimeout, JSON::ParserError
      nil
    end

    # The status page's header line ("pid ... · generation ..."), read
    # from one request; nil when it does not answer.
    def status_page
      res = Net::HTTP.start("127.0.0.1", @port, open_timeout: 2, read_timeout: 5) do |http|
        http.get("/forkflag/", "Connection" => "close")
      end
      return nil unless res.code == "200"

      res.body[%r{<span class="process"[^>]*>([^<]*)</span>}, 1]&.then { |line| CGI.unescapeHTML(line) }
    rescue SystemCallError, IOError, Net::ReadTimeout, Net::OpenTimeout
      nil
    end

    # Requests from 4 threads until the block says done; the block gets
    # each answer with the monotonic time it arrived.
    def drive(timeout:)
      lock = Mutex.new
      done = false
      deadline = Demo.now + timeout
      threads = Array.new(4) do
        Thread.new do
          until done || Demo.now > deadline
            answer = get
            (answer ? lock.synchronize { done ||= yield(answer, Demo.now) } : sleep(0.05))
          end
        end
      end
      threads.each(&:join)
      done
    end
  end
end
