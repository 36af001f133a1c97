# frozen_string_literal: true

# The app bench/throughput.rb serves, twice: with FORKFLAG_BENCH_EVALUATE=1
# every request evaluates 10 flags for a context built from the request;
# without it the same request does the same work minus the evaluations.
# Loaded once in Puma's master (preload_app!), so the client is created
# before the workers fork, as the README recommends.
require_relative "../support"

# The names as an application writes them: literals, frozen in a file with
# `# frozen_string_literal: true` (`-` gives the same deduplicated frozen
# String a literal is).
FLAG_NAMES = Bench.request_names
EVALUATE = ENV["FORKFLAG_BENCH_EVALUATE"] == "1"
CLIENT = if EVALUATE
           Forkflag::Client.new(file: ENV.fetch("FORKFLAG_BENCH_FLAGS"), backup_path: false,
                                disable_metrics: true, refresh_interval: 15)
         end

run(lambda do |env|
  context = Bench.request_context(env["QUERY_STRING"])
  on = 0
  FLAG_NAMES.each { |name| on += 1 if EVALUATE && CLIENT.enabled?(name, context) }
  [200, { "content-type" => "text/plain" }, [on.to_s]]
end)
