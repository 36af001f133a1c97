# frozen_string_literal: true

require "json"

# Real forks for the specs: children report over a pipe (one JSON line per
# message, short enough that writes from several processes never
# interleave), and every child is reaped with a deadline, escalating
# INT -> KILL, so a hung child fails the test instead of hanging it.
module Forking
  # Messages from any number of processes, read by the test process.
  class Channel
    def initialize
      @reader, @writer = IO.pipe
      @buffer = +""
      @messages = []
    end

    # In any process: sends a message (a Hash).
    def send_message(message)
      line = "#{JSON.generate(message)}\n"
      raise ArgumentError, "message too long for an atomic pipe write" if line.bytesize > 4000

      @writer.write(line)
    end

    # In the test process: messages received so far (reads what is there).
    def messages
      loop do
        chunk = @reader.read_nonblock(65_536, exception: false)
        break if chunk == :wait_readable || chunk.nil?

        @buffer << chunk
      end
      while (line = @buffer.slice!(/\A[^\n]*\n/))
        @messages << JSON.parse(line, symbolize_names: true)
      end
      @messages
    end

    # Waits (bounded) until the block is true for the messages; returns them.
    def wait_until(timeout:, what:)
      deadline = Forking.now + timeout
      loop do
        current = messages
        return current if yield(current)
        if Forking.now > deadline
          raise "timed out after #{timeout}s waiting for #{what}; got #{current.inspect[0, 2000]}"
        end

        @reader.wait_readable([deadline - Forking.now, 0.05].max)
      end
    end

    def close
      @reader.close unless @reader.closed?
      @writer.close unless @writer.closed?
    end
  end

  module_function

  def now
    Process.clock_gettime(Process::CLOCK_MONOTONIC)
  end

  # Forks a child that runs the block then exits (exit! with 0, or 1 if the
  # block raised, after reporting the error on stderr).
  def fork_child(&block)
    fork do
      block.call
      exit!(0)
    rescue Exception => e # rubocop:disable Lint/RescueException
      warn("child #{Process.pid} failed: #{e.class}: #{e.message}\n#{e.backtrace&.first(8)&.join("\n")}")
      exit!(1)
    end
  end

  # Waits for a child until the deadline (monotonic seconds); then INT,
  # then KILL. Returns [status, late] where late is true if it had to be
  # signalled.
  def reap(pid, deadline:)
    loop do
      _, status = Process.waitpid2(pid, Process::WNOHANG)
      return [status, false] if status
      break if now > deadline

      sleep 0.005
    end
    %w[INT KILL].each do |signal|
      begin
        Process.kill(signal, pid)
      rescue Errno::ESRCH
        nil
      end
      grace = now + 2
      while now < grace
        _, status = Process.waitpid2(pid, Process::WNOHANG)
        return [status, true] if status

        sleep 0.01
      end
    end
    [nil, true]
  end

  # Kills pids that may not be our children (grandchildren), best effort.
  def kill_all(pids)
    pids.each do |pid|
      Process.kill("KILL", pid)
    rescue Errno::ESRCH, Errno::EPERM
      nil
    end
  end
end
