# frozen_string_literal: true

require "securerandom"
require "forkflag/unleash"

# The official SDK's README examples, run through forkflag/unleash against
# the real unleash-server, with the server's metrics checked.
RSpec.describe "forkflag/unleash against a real Unleash server", :integration do
  include Forking

  let(:server) { UnleashServer.instance }
  let(:app_name) { "forkflag-layer-#{SecureRandom.hex(4)}" }
  let(:clients) { [] }
  let!(:channel) { Forking::Channel.new }

  before do
    @saved = Unleash.configuration
    Unleash.configuration = Unleash::Configuration.new
    Unleash.configuration.logger = Logger.new(File::NULL)
  end

  after do
    clients.each(&:shutdown!)
    channel.close
    Unleash.configuration = @saved
  end

  def unleash_client(**options)
    client = Unleash::Client.new(**options)
    clients << client
    # Unlike the official SDK, creating the client does not wait for the
    # server: the example waits for the first refresh.
    expect(client.forkflag.wait_until_ready(timeout: 10)).to be(true)
    client
  end

  # A flag turned on, once the server's client API serves it.
  def flag_on(name, strategy: "default", parameters: {}, constraints: [], variants: [])
    server.create_flag(name)
    server.add_strategy(name, strategy_name: strategy, parameters: parameters, constraints: constraints,
                              variants: variants)
    server.flip(name, on: true)
    name
  end

  it "runs the plain Ruby example (is_enabled?, is_disabled? with a Context) and reports its evaluations" do
    feature = flag_on("AwesomeFeature-#{SecureRandom.hex(3)}",
                      constraints: [{ contextName: "userId", operator: "IN", values: ["123"] }])
    @unleash = unleash_client(app_name: app_name, url: server.url, metrics_interval: 0.5, refresh_interval: 0.5,
                              custom_http_headers: { Authorization: server.client_token })
    feature_name = feature
    unleash_context = Unleash::Context.new
    unleash_context.user_id = 123
    answers = []
    answers << (@unleash.is_enabled?(feature_name, unleash_context) ? "enabled" : "not enabled")
    answers << (@unleash.is_disabled?(feature_name, unleash_context) ? "disabled" : "not disabled")
    unleash_context.user_id = 7
    answers << (@unleash.is_enabled?(feature_name, unleash_context) ? "enabled" : "not enabled")
    expect(answers).to eq(["enabled", "not disabled", "not enabled"])
    @unleash.shutdown
    expect(server.settled_totals(feature, { yes: 2, no: 1 }, app_name: app_name)).to include(yes: 2, no: 1)
  end

  it "runs the configure + custom strategy + fallback examples, with headers from a Proc" do
    strategy_name = server.define_strategy("myCustomStrategy")
    custom = flag_on("custom-#{SecureRandom.hex(3)}", strategy: strategy_name)
    colours = flag_on("ColorVariants-#{SecureRandom.hex(3)}",
                      variants: [{ name: "red", weight: 1000, weightType: "variable", stickiness: "default",
                                   payload: { type: "string", value: "r" } }])
    my_custom_strategy = Class.new do
      def name = "myCustomStrategy"
      def is_enabled?(_params = {}, context = nil) = context.properties[:coolness].to_i >= 8
    end
    token = server.client_token
    header_calls = 0
    Unleash.configure do |config|
      config.app_name = app_name
      config.url = server.url
      config.refresh_interval = 0.1
      config.custom_http_headers = proc do
        header_calls += 1
        { Authorization: token, "X-Client-Request-Time": Time.now.iso8601 }
      end
      config.strategies.add(my_custom_strategy.new)
    end
    unleash = unleash_client
    # The Proc is called before each request (refreshes every 0.1 s here).
    UnleashServer.wait_for(timeout: 10, message: "the headers Proc called per request") do
      header_calls > unleash.forkflag.stats[:refreshes] && unleash.forkflag.stats[:refreshes] >= 5
    end
    context = Unleash::Context.new(user_id: "1")
    context.properties[:coolness] = 10
    expect(unleash.is_enabled?(custom, context)).to be(true)
    context.properties[:coolness] = 2
    expect(unleash.is_enabled?(custom, context)).to be(false)
    awesomeness = 10
    expect(unleash.is_enabled?("unknown-#{SecureRandom.hex(3)}", context) { |_feat, _ctx| awesomeness >= 6 })
      .to be(true)
    fallback_variant = Unleash::Variant.new(name: "default", enabled: true, payload: { "color" => "blue" })
    expect(unleash.get_variant("unknown-#{SecureRandom.hex(3)}", context, fallback_variant).payload.fetch("color"))
      .to eq("blue")
    expect(unleash.get_variant(colours, context, fallback_variant))
      .to have_attributes(name: "red", payload: { "type" => "string", "value" => "r" })
  end

  it "bootstraps from the server's own features URL, without waiting for it" do
    feature = flag_on("bootstrapped-#{SecureRandom.hex(3)}")
    bootstrap = Unleash::Bootstrap::Configuration.new(url: "#{server.url}/client/features",
                                                      url_headers: { "Authorization" => server.client_token })
    client = Unleash::Client.new(app_name: app_name, disable_client: true, bootstrap_config: bootstrap)
    clients << client
    UnleashServer.wait_for(timeout: 10, message: "bootstrap from the URL") { client.is_enabled?(feature) }
  end

  it "serves forked workers from a client made once before the fork, and from per-worker clients (on_worker_boot)" do
    feature = flag_on("forked-#{SecureRandom.hex(3)}")
    options = { app_name: app_name, url: server.url, refresh_interval: 0.5, metrics_interval: 0.5,
                custom_http_headers: { Authorization: server.client_token } }
    preloaded = unleash_client(**options)
    pids = Array.new(2) do |worker|
      fork_child do
        own = Unleash::Client.new(**options) # the README's on_worker_boot
        own.forkflag.wait_until_ready(timeout: 10)
        answers = [preloaded.is_enabled?(feature), preloaded.is_enabled?(feature), own.is_enabled?(feature)]
        own.shutdown # on_worker_shutdown
        preloaded.shutdown
        channel.send_message(worker: worker, answers: answers)
      end
    end
    messages = channel.wait_until(timeout: 30, what: "both workers") { |m| m.size == 2 }
    pids.each { |pid| expect(reap(pid, deadline: now + 20).first&.success?).to be(true) }
    expect(messages.map { |m| m[:answers] }).to all(eq([true, true, true]))
    expect(server.settled_totals(feature, { yes: 6 }, app_name: app_name)).to include(yes: 6, no: 0)
  end
end
