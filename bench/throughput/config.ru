# frozen_string_literal: true

# The app bench/throughput.rb serves, several times: with
# FORKFLAG_BENCH_EVALUATE=1 every request evaluates 10 flags for a context
# built from the request; without it the same request does the same work
# minus the evaluations. The flags come from the file FORKFLAG_BENCH_FLAGS,
# or, when FORKFLAG_BENCH_URL is set, from that server (token
# FORKFLAG_BENCH_TOKEN, CA FORKFLAG_BENCH_CA for an https URL).
# Loaded once in Puma's master (preload_app!), so the client is created
# before the workers fork, as the README recommends.
require_relative "../support"

# The names as an application writes them: literals, frozen in a file with
# `# frozen_string_literal: true` (`-` gives the same deduplicated frozen
# String a literal is).
FLAG_NAMES = Bench.request_names
EVALUATE = ENV["FORKFLAG_BENCH_EVALUATE"] == "1"
URL = ENV.fetch("FORKFLAG_BENCH_URL", "")
CLIENT = if !EVALUATE
           nil
         elsif URL.empty?
           Forkflag::Client.new(file: ENV.fetch("FORKFLAG_BENCH_FLAGS"), backup_path: false,
                                disable_metrics: true, refresh_interval: 15)
         else
           Forkflag::Client.new(url: URL, token: ENV.fetch("FORKFLAG_BENCH_TOKEN"), app_name: "forkflag-bench",
                                tls_ca_file: ENV.fetch("FORKFLAG_BENCH_CA", nil), backup_path: false,
                                disable_metrics: true, refresh_interval: 15)
         end

run(lambda do |env|
  context = Bench.request_context(env["QUERY_STRING"])
  on = 0
  FLAG_NAMES.each { |name| on += 1 if EVALUATE && CLIENT.enabled?(name, context) }
  [200, { "content-type" => "text/plain" }, [on.to_s]]
end)
