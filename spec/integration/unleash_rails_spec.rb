# frozen_string_literal: true

require "json"
require "open3"
require "securerandom"

# The official README's Rails initializer and controller
# (spec/fixtures/unleash_rails), unchanged, on forkflag/unleash: the client
# made once in the initializer serves workers forked after boot, and the
# server counts exactly their evaluations.
RSpec.describe "a Rails app with the official README's initializer on forkflag/unleash", :integration do
  let(:server) { UnleashServer.instance }

  it "serves forked workers from the initializer's UNLEASH, with exact metrics under the app's name" do
    feature = "rails-#{SecureRandom.hex(4)}"
    server.create_flag(feature)
    server.add_strategy(feature, constraints: [{ contextName: "userId", operator: "IN", values: %w[1 3] }])
    server.flip(feature, on: true)
    env = { "UNLEASH_URL" => server.url, "UNLEASH_TOKEN" => server.client_token, "FEATURE" => feature,
            "RUBYLIB" => [File.expand_path("../../lib", __dir__), ENV.fetch("RUBYLIB", nil)].compact.join(":") }
    # Outside the suite's bundle (Rails is not in its Gemfile), as the app runs.
    run = lambda do
      Open3.capture3(env, RbConfig.ruby, "spec/fixtures/unleash_rails/app.rb",
                     chdir: File.expand_path("../..", __dir__))
    end
    out, err, status = defined?(Bundler) ? Bundler.with_unbundled_env(&run) : run.call
    expect(status.success?).to be(true), err
    workers = out.lines.map { |line| JSON.parse(line) }
    expect(workers.size).to eq(2)
    expect(workers.map { |w| w["answers"].map { |a| [a["enabled"], a["disabled"]] } })
      .to all(eq([[true, false], [false, true], [true, false]]))
    expect(workers.map { |w| w["app_name"] }.uniq).to eq(["UnleashRailsApp"])
    # Each worker: 3 is_enabled? and 3 is_disabled? (each one evaluation).
    expect(server.settled_totals(feature, { yes: 8, no: 4 }, app_name: "UnleashRailsApp"))
      .to include(yes: 8, no: 4)
  end
end
