# frozen_string_literal: true

require "forkflag"
require "json"

Dir[File.join(__dir__, "support", "**", "*.rb")].each { |f| require f }

RSpec.configure do |config|
  config.disable_monkey_patching!
  config.expect_with(:rspec) { |c| c.syntax = :expect }
  config.order = :random
  Kernel.srand config.seed

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
