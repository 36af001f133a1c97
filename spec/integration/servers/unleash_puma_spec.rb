# frozen_string_literal: true

# The official Unleash README's Puma recipes (examples/unleash/puma.rb),
# unchanged, in a real Puma 5.6 cluster on forkflag/unleash, against the
# real Unleash server: every worker serves a flip, and the server's metrics
# are exactly the evaluations the workers made.
RSpec.describe "Puma cluster running the official SDK's recipes on forkflag/unleash", :integration do
  include_context "server processes", "unleash-puma"

  def boot(recipe, flags, variants)
    command = [Gem.ruby, ServerProcess.executable("puma"), "-C", "examples/unleash/puma.rb",
               "examples/unleash/config.ru"]
    env = {
      "UNLEASH_RECIPE" => recipe, "UNLEASH_URL" => unleash.url, "UNLEASH_TOKEN" => unleash.client_token,
      "UNLEASH_APP_NAME" => app_name, "UNLEASH_REFRESH_INTERVAL" => refresh_interval,
      "UNLEASH_FLAGS" => flags.join(","), "UNLEASH_VARIANTS" => variants.join(","), "WORKERS" => 3
    }
    server = ServerProcess.new(command, name: "puma-#{recipe}", env: env)
    serve(server)
    server
  end

  %w[preload no_preload initializer].each do |recipe|
    it "#{recipe}: every worker serves a flip, and the server counts exactly their evaluations" do
      flag = create_off_flag(unleash, "unleash-#{recipe}")
      banner = create_variant_flag(unleash, "unleash-#{recipe}-banner")
      server = boot(recipe, [flag], [banner])

      before = until_pids(server, 3, where: ->(r) { r.body["ready"] })
      pids = before.map(&:pid).uniq
      flipped_at = unleash.flip(flag, on: true) - Process.clock_gettime(Process::CLOCK_REALTIME) + ServerProcess.now
      _delays, after = expect_flip_everywhere(server, pids, flag, true, flipped_at: flipped_at, bound: bound)
      responses = before + after
      expect(after.map { |r| r.flags[banner] }.uniq - %w[red green]).to eq([])

      expect_clean_stop(server, signal: "TERM", timeout: 20)
      expect_server_metrics(unleash, app_name, evaluations_made(responses), unanswered: server.unanswered)
    end
  end
end
