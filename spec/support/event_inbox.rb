# frozen_string_literal: true

require "timeout"

# What listeners received, in order, with bounded waits: no spec sleeps a
# fixed time to assert an event came (or did not: a spec proves "no event"
# by making a later change and checking that it is the next event).
class EventInbox
  def initialize
    @queue = Thread::Queue.new
  end

  # A listener block that records what it gets (and the thread it ran on).
  def listener
    queue = @queue
    ->(event) { queue << event }
  end

  def <<(event)
    @queue << event
  end

  # Events received and not taken yet.
  def size
    @queue.size
  end

  # The next event; raises when none arrives within the timeout.
  def next(timeout: 10, what: "an event")
    Timeout.timeout(timeout) { @queue.pop }
  rescue Timeout::Error
    raise "#{what} did not arrive within #{timeout}s"
  end

  # Events until one matches the block (returned); raises on timeout.
  def next_matching(timeout: 20, what: "a matching event")
    deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + timeout
    loop do
      left = deadline - Process.clock_gettime(Process::CLOCK_MONOTONIC)
      raise "#{what} did not arrive within #{timeout}s" if left <= 0

      event = self.next(timeout: left, what: what)
      return event if yield(event)
    end
  end
end
