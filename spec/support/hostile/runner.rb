# frozen_string_literal: true

require "json"
require_relative "call_sites"
require "tempfile"

module Hostile
  # The exceptions a public method may raise for a hostile value (besides
  # none at all).
  ALLOWED = [TypeError, ArgumentError, RangeError, EncodingError, Forkflag::Error, HostileError].freeze

  # GC.stress modes: off; a minor GC at every allocation (young objects
  # that nothing in the VM holds are freed at once: what a native method
  # forgets to root is gone before its next allocation); a full GC at every
  # allocation (GC.stress = true: about 100 times slower, so only a share).
  STRESS_MODES = { off: false, minor: 0x01, full: true }.freeze

  # A call of a call site with a value, and the GC.stress mode it runs under.
  Step = Struct.new(:value_index, :stress)

  # The outcome of one call site over its steps.
  Report = Struct.new(:returned, :raised, :failures, :stress_counts, keyword_init: true)

  # Runs a call site's steps in forked children, so that a crash (SIGSEGV,
  # abort, a panic turned fatal) or a hang fails the call it happened in,
  # with its report, instead of killing rspec. After a crash the steps left
  # run in a new child.
  class Runner
    # Seconds a child may take for its steps (a hang is a failure).
    DEADLINE = Integer(ENV.fetch("FORKFLAG_HOSTILE_DEADLINE", "120"))

    # The pipes of the children running now (several run at once): a child
    # closes the others' ends, so that each reader sees its own child's end.
    @pipes = {}
    @pipes_lock = Mutex.new

    class << self
      # Forks a child that runs the block, registering its pipe.
      def spawn(reader, writer)
        @pipes_lock.synchronize do
          others = @pipes.values.flatten
          @pipes[reader] = [reader, writer]
          fork do
            others.each { |io| io.close unless io.closed? }
            yield
          end
        end
      end

      def forget(reader)
        @pipes_lock.synchronize { @pipes.delete(reader) }
      end
    end

    def initialize(label, call, steps, deadline: DEADLINE)
      @label = label
      @call = call
      @steps = steps
      @deadline = deadline
    end

    # @return [Report]
    def run
      report = Report.new(returned: 0, raised: 0, failures: [], stress_counts: Hash.new(0))
      left = @steps
      until left.empty?
        done = run_child(left, report)
        left = left.drop(done)
      end
      report
    end

    private

    # Runs steps in one child; returns how many it finished (a crashed or
    # hung step counts as finished, with its failure).
    def run_child(steps, report)
      reader, writer = IO.pipe
      stderr = Tempfile.new("hostile-stderr")
      @running = steps
      pid = Runner.spawn(reader, writer) { child(steps, reader, writer, stderr) }
      writer.close
      started, finished, hung = collect(reader, pid, report)
      status, late = Forking.reap(pid, deadline: Forking.now + 5)
      return steps.size if finished

      step = steps[started] || steps.last
      report.failures << crash_message(step, status, hung || late, stderr)
      report.stress_counts[step.stress] += 1
      started + 1
    ensure
      Runner.forget(reader)
      reader&.close
      stderr&.close!
    end

    # Reads the child's lines until its summary, its end, or the deadline
    # (then kills it). Returns [index of the last step started, whether the
    # summary came, whether it hung].
    def collect(reader, pid, report)
      deadline = Forking.now + @deadline
      @started = 0
      buffer = +""
      until Forking.now > deadline
        next unless reader.wait_readable([deadline - Forking.now, 0.05].max)

        chunk = reader.read_nonblock(65_536, exception: false)
        return [@started, false, false] if chunk.nil?

        buffer << chunk unless chunk == :wait_readable
        return [@started, true, false] if consume(buffer, report)
      end
      Forking.kill_all([pid])
      [@started, false, true]
    end

    # Takes the complete lines from the buffer; true when the summary came.
    def consume(buffer, report)
      while (line = buffer.slice!(/\A[^\n]*\n/))
        kind, rest = line.chomp.split(" ", 2)
        case kind
        when "S" then @started = Integer(rest)
        when "O" then record(report, *JSON.parse(rest))
        when "D" then return true
        end
      end
      false
    end

    # One step's outcome: "returned", "raised" (an allowed exception), or
    # what escaped.
    def record(report, index, outcome)
      step = @running[index]
      report.stress_counts[step.stress] += 1
      case outcome
      when "returned" then report.returned += 1
      when "raised" then report.raised += 1
      else
        report.failures << "#{@label} with #{Hostile.values[step.value_index].label} (GC.stress #{step.stress}): " \
                           "#{outcome}"
      end
    end

    def crash_message(step, status, late, stderr)
      value = Hostile.values[step.value_index]
      how = if late then "hung (killed after #{@deadline}s)"
            elsif status&.signaled? then "crashed with signal #{Signal.signame(status.termsig)}"
            else
              "exited with status #{status&.exitstatus.inspect} without a report"
            end
      stderr.rewind
      tail = stderr.read.to_s.scrub.lines.last(12).join
      "#{@label} with #{value.label} (GC.stress #{step.stress}): the process #{how}\n#{tail}"
    end

    # In the child: runs the steps, writing "S i" before step i and
    # "D summary" at the end.
    def child(steps, reader, writer, stderr)
      reader.close
      $stderr.reopen(stderr.path, "w")
      Hostile.load_integrations
      fixture = Fixture.new
      # On a thread of its own: a short stack, so every exception raised
      # records a short backtrace (a long one makes each call under
      # GC.stress allocate, and collect, many times more).
      Thread.new do
        steps.each_with_index do |step, index|
          writer.write("S #{index}\n")
          outcome = Hostile.call_once(@call, Hostile.values[step.value_index].object, fixture,
                                      STRESS_MODES.fetch(step.stress))
          writer.write("O #{JSON.generate([index, outcome.to_s])}\n")
        end
      end.join
      writer.write("D\n")
      exit!(0)
    rescue Exception => e # rubocop:disable Lint/RescueException
      warn("the child failed outside a call: #{e.class}: #{e.message}\n#{e.backtrace&.first(6)&.join("\n")}")
      exit!(3)
    end
  end

  module_function

  # Runs call sites, `jobs` at a time (each in its own children).
  # @param work [Array<[label, call, steps]>]
  # @return [Hash{label => [Report, seconds]}]
  def run_sites(work, jobs:)
    queue = Queue.new
    work.each { |item| queue << item }
    results = {}
    lock = Mutex.new
    Array.new(jobs) do
      Thread.new do
        while (item = queue.pop(true))
          label, call, steps = item
          started = Forking.now
          report = Runner.new(label, call, steps).run
          lock.synchronize { results[label] = [report, Forking.now - started] }
        end
      rescue ThreadError # the queue is empty
        nil
      end
    end.each(&:join)
    results
  end

  # Calls once; :returned, :raised (an allowed exception), or the text of
  # what escaped that is not allowed.
  def call_once(call, object, fixture, stress)
    outcome = begin
      GC.stress = stress
      call.call(object, fixture)
      :returned
    rescue *ALLOWED
      :raised
    rescue SignalException, SystemExit
      GC.stress = false
      raise
    rescue Exception => e # rubocop:disable Lint/RescueException
      e
    ensure
      GC.stress = false
    end
    outcome.is_a?(Exception) ? described(outcome) : outcome
  end

  def described(error)
    message = begin
      error.message.to_s
    rescue Exception # rubocop:disable Lint/RescueException
      "(its message raised)"
    end
    where = error.backtrace&.find { |line| line.include?("/lib/forkflag/") } || error.backtrace&.first
    text = "#{error.class}: #{message[0, 300]} (at #{where})"
    text.dup.force_encoding(Encoding::UTF_8).scrub
  end

  # The integrations some call sites need, loaded in the children only
  # (forkflag/rspec installs its hooks in whatever rspec loads it).
  def load_integrations
    require "forkflag/rack"
    require "forkflag/rspec"
    require "forkflag/server_hooks"
    require "forkflag/web"
  end

  # The steps of the call site numbered `site`: every value (or every
  # `every`th, for a short run), every other one under GC.stress: minor,
  # except one per call site under full GC.stress (a different value at
  # each site); large values never under GC.stress.
  def steps(site, every: 1, stress: true)
    indexes = values.each_index.select { |i| (i % every).zero? }
    stressed = stress ? stressed_indexes(indexes, site) : []
    full = stressed[site % stressed.size] unless stressed.empty?
    # The stressed calls first, while the child's heap is small.
    stressed.map { |i| Step.new(i, i == full ? :full : :minor) } +
      (indexes - stressed).map { |i| Step.new(i, :off) }
  end

  def stressed_indexes(indexes, site)
    indexes.select { |i| (i + site).odd? && !values[i].large? }
  end
end
