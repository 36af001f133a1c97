# frozen_string_literal: true

require "forkflag"
require "json"

Dir[File.join(__dir__, "support", "**", "*.rb")].each { |f| require f }

RSpec.configure do |config|
  config.disable_monkey_patching!
  config.expect_with(:rspec) { |c| c.syntax = :expect }
  config.order = :random
  Kernel.srand config.seed

  # Every example closes the clients it starts: a worker thread left running
  # would end whenever GC finalizes its client, in the middle of a later
  # example that counts threads. A thread blocked on a server the example
  # has stopped may take a moment to see its socket close.
  config.before(:each) { @forkflag_threads_before = ForkSafe.native_threads }
  config.after(:each) do
    deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + 3
    sleep 0.01 while ForkSafe.native_threads > @forkflag_threads_before &&
                     Process.clock_gettime(Process::CLOCK_MONOTONIC) < deadline
    left = ForkSafe.native_threads - @forkflag_threads_before
    raise "this example left #{left} forkflag-worker thread(s) running: close the clients it creates" if left.positive?
  end

  # FORKFLAG_GC_STRESS=1 runs the examples tagged :gc_stress with GC.stress on,
  # so a native method that mishandles a Ruby object crashes here, not in
  # production.
  if ENV["FORKFLAG_GC_STRESS"] == "1"
    config.filter_run_including :gc_stress
    config.around(:each) do |example|
      GC.stress = true
      example.run
    ensure
      GC.stress = false
    end
  end
end
