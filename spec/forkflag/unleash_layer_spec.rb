# frozen_string_literal: true

require "open3"
require "socket"
require "rbconfig"
require "forkflag/unleash"

# The official SDK's API (require "forkflag/unleash"), with the official
# SDK's answers, against bootstrapped flags (no server: the integration
# spec has the server).
RSpec.describe "forkflag/unleash, the official SDK's API" do
  include FlagPayloads

  let(:json) do
    payload(
      flag("on"), flag("off", enabled: false),
      flag("colour", strategies: [{ name: "default", variants: [
             { name: "blue", weight: 1000, stickiness: "default", payload: { type: "string", value: "b" } }
           ] }]),
      flag("tenant", strategies: [{ name: "tenantStrategy", parameters: { tenants: "acme" } }])
    )
  end
  let(:clients) { [] }
  let(:log) { StringIO.new }

  before do
    @saved = Unleash.configuration
    Unleash.configuration = Unleash::Configuration.new
    Unleash.configuration.app_name = "layer-spec"
  end

  after do
    clients.each(&:shutdown!)
    Unleash.configuration = @saved
  end

  def client(**options)
    c = Unleash::Client.new(disable_client: true, logger: Logger.new(log),
                            bootstrap_config: Unleash::Bootstrap::Configuration.new(data: json), **options)
    clients << c
    c
  end

  def with_strategy(&answer)
    Class.new do
      define_method(:name) { "tenantStrategy" }
      define_method(:enabled?) { |parameters, context| answer.call(parameters, context) }
    end.new
  end

  describe "is_enabled? and its relatives" do
    it "answers known flags, and the default for an unknown one" do
      c = client
      expect([c.is_enabled?("on"), c.is_enabled?("off"), c.enabled?("on", {}), c.is_enabled?("nope")])
        .to eq([true, false, true, false])
      expect([c.is_enabled?("nope", nil, true), c.is_enabled?("off", nil, true)]).to eq([true, false])
      # A default that is not a Boolean comes back as given, for an unknown flag only.
      expect([c.is_enabled?("nope", nil, "x"), c.is_enabled?("on", nil, "x"), c.is_enabled?("nope", nil, nil)])
        .to eq(["x", true, nil])
    end

    it "calls the fallback block on each call unless the default is truthy, OR-ing its truth for an unknown flag" do
      c = client
      calls = []
      fallback = lambda { |feature, context|
        calls << [feature, context]
        feature == "nope"
      }
      expect(c.is_enabled?("nope", nil, &fallback)).to be(true)
      expect(c.is_enabled?("other-unknown", { userId: "1" }, &fallback)).to be(false)
      expect(c.is_enabled?("off", nil, &fallback)).to be(false) # known: the block's answer is not used
      expect(calls).to eq([["nope", nil], ["other-unknown", { userId: "1" }], ["off", nil]])
      expect(c.is_enabled?("nope", nil, true) { raise "not called when the default is truthy" }).to be(true)
      expect(c.is_enabled?("nope") { "a String is truthy" }).to be(true)
      expect(c.is_enabled?("nope") { nil }).to be(false)
    end

    it "is_disabled?, disabled?, if_enabled and if_disabled as the official SDK" do
      c = client
      expect([c.is_disabled?("on"), c.disabled?("off"), c.is_disabled?("nope"), c.is_disabled?("nope", nil, false)])
        .to eq([false, true, true, false])
      expect(c.is_disabled?("nope") { true }).to be(false) # the block's truth means on for an unknown flag
      expect(c.if_enabled("on") { :ran }).to eq(:ran)
      expect(c.if_enabled("off") { :ran }).to be_nil
      expect(c.if_disabled("off") { :ran }).to eq(:ran)
      expect(c.if_enabled("nope", nil, true) { :ran }).to eq(:ran)
    end

    it "reads an Unleash::Context as it is at each call, and Hashes in either spelling" do
      c = client(strategies: Unleash::Strategies.new.tap do |s|
        s.add(with_strategy { |_p, context| context.user_id == "123" })
      end)
      ctx = Unleash::Context.new
      ctx.user_id = 123
      expect(c.is_enabled?("tenant", ctx)).to be(true)
      ctx.user_id = 5
      expect(c.is_enabled?("tenant", ctx)).to be(false)
      expect(c.is_enabled?("tenant", { userId: "123" })).to be(true)
      expect(c.is_enabled?("tenant", { user_id: "123" })).to be(true)
    end
  end

  describe "get_variant" do
    it "gives a new Unleash::Variant for a known flag and the fallback itself for an unknown one" do
      c = client
      fallback = Unleash::Variant.new(name: "default", enabled: true, payload: { "color" => "blue" })
      variant = c.get_variant("colour", Unleash::Context.new(user_id: "1"), fallback)
      expect(variant).to have_attributes(name: "blue", enabled: true, feature_enabled: true,
                                         payload: { "type" => "string", "value" => "b" })
      expect(c.get_variant("nope", nil, fallback)).to equal(fallback)
      expect(c.get_variant("nope", nil, fallback).payload.fetch("color")).to eq("blue")
      expect(c.get_variant("off", nil, fallback)).to have_attributes(name: "disabled", enabled: false,
                                                                     feature_enabled: false)
      expect(c.get_variant("on")).to have_attributes(name: "disabled", enabled: false, feature_enabled: true)
      expect(c.get_variant("nope")).to equal(c.get_variant("other-unknown")) # one disabled variant per client
      expect(c.get_variant("nope")).to eq(Unleash::Variant.disabled_variant)
    end
  end

  describe "custom strategies" do
    it "calls a strategy added to the configuration with its parameters and the context" do
      seen = []
      Unleash.configure do |config|
        config.app_name = "configured"
        config.strategies.add(with_strategy do |parameters, context|
          seen << [parameters, context.get_by_name("tenant"), context.app_name]
          parameters["tenants"] == context.properties[:tenant]
        end)
      end
      c = client
      expect(c.is_enabled?("tenant", Unleash::Context.new(properties: { tenant: "acme" }))).to be(true)
      expect(c.is_enabled?("tenant", Unleash::Context.new(properties: { tenant: "other" }))).to be(false)
      expect(seen.first).to eq([{ "tenants" => "acme" }, "acme", "configured"])
    end

    it "accepts the README's is_enabled? strategies, and keeps the built-in names" do
      readme_strategy = Class.new do
        def name = "tenantStrategy"
        def is_enabled?(_params = {}, _context = nil) = true
      end
      strategies = Unleash::Strategies.new
      strategies.add(readme_strategy.new)
      expect(client(strategies: strategies).is_enabled?("tenant")).to be(true)
      expect(strategies.includes?("tenantStrategy")).to be(true)
      expect(strategies.includes?("default")).to be(true)
      expect(strategies.known_strategies).to eq([{ name: "tenantStrategy" }])
      built_in = Class.new { def name = "flexibleRollout" }.new
      expect do
        strategies.add(built_in)
      end.to raise_error(Unleash::DefaultOverrideError, "Cannot override a default strategy")
      expect { strategies.add(Object.new) }.to raise_error(ArgumentError, /must answer name/)
    end

    it "evaluates a strategy that raises as false and logs it, where the official SDK would raise" do
      Unleash.configure { |config| config.strategies.add(with_strategy { |_p, _c| raise KeyError, "tenant" }) }

      c = client
      expect(c.is_enabled?("tenant", Unleash::Context.new)).to be(false)
      expect(log.string).to include('custom strategy "tenantStrategy" raised KeyError')
    end
  end

  describe "configuration" do
    it "gives each client its own options over the defaults of Unleash.configure" do
      Unleash.configure do |config|
        config.app_name = "default-app"
        config.refresh_interval = 7
      end
      first = client(app_name: "first")
      second = client(refresh_interval: 3)
      expect(first.configuration).to have_attributes(app_name: "first", refresh_interval: 7)
      expect(second.configuration).to have_attributes(app_name: "default-app", refresh_interval: 3)
      expect(Unleash.configuration).to have_attributes(app_name: "default-app", refresh_interval: 7)
      expect(first.forkflag.config.app_name).to eq("first")
      expect(second.forkflag.config.refresh_interval).to eq(3)
    end

    it "raises the official SDK's errors, naming the option" do
      Unleash.configuration.app_name = nil
      expect { Unleash::Client.new(url: "http://127.0.0.1:9/api") }
        .to raise_error(ArgumentError, "app_name is a required parameter.")
      expect { client(colour: "blue") }.to raise_error(ArgumentError, /unknown configuration parameter 'colour'/)
      expect { Unleash::Client.new("app") }.to raise_error(ArgumentError, /takes a Hash of options, got "app"/)
      expect do
        client(custom_http_headers: "x")
      end.to raise_error(ArgumentError, "custom_http_headers must be a Hash or a Proc.")
      expect { Unleash::Client.new(app_name: "a", url: "http://127.0.0.1:9/api") }
        .to raise_error(ArgumentError, /Authorization/)
      expect { Unleash::Client.new(app_name: "a", url: "ftp://x", custom_http_headers: { Authorization: "t" }) }
        .to raise_error(ArgumentError, /option :url/)
    end

    it "never waits on the network: a client of a server that never answers answers at once from its bootstrap" do
      hung = TCPServer.new("127.0.0.1", 0) # accepts connections (the backlog) and never answers
      started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
      c = Unleash::Client.new(url: "http://127.0.0.1:#{hung.addr[1]}/api", timeout: 1, backup_file: false,
                              custom_http_headers: { Authorization: "token" }, logger: Logger.new(log),
                              bootstrap_config: Unleash::Bootstrap::Configuration.new(data: json))
      expect(c.is_enabled?("on")).to be(true)
      expect(Process.clock_gettime(Process::CLOCK_MONOTONIC) - started).to be < 0.5
      c.shutdown!
    ensure
      hung&.close
    end

    it "bootstraps from data (text or a Hash), a block, a file and the environment" do
      hash = JSON.parse(json)
      expect(client(bootstrap_config: Unleash::Bootstrap::Configuration.new(data: hash)).is_enabled?("on")).to be(true)
      by_block = Unleash::Bootstrap::Configuration.new(block: -> { json })
      expect(client(bootstrap_config: by_block).is_enabled?("on")).to be(true)
      FlagPayloads.with_flags_file(json) do |path|
        expect(client(bootstrap_config: Unleash::Bootstrap::Configuration.new(file_path: path)).is_enabled?("on"))
          .to be(true)
        ENV["UNLEASH_BOOTSTRAP_FILE"] = path
        from_env = Unleash::Bootstrap::Configuration.new
        expect(from_env.file_path).to eq(path)
        expect(client(bootstrap_config: from_env).is_enabled?("on")).to be(true)
      ensure
        ENV.delete("UNLEASH_BOOTSTRAP_FILE")
      end
      missing = Unleash::Bootstrap::Configuration.new(file_path: "/nonexistent/flags.json")
      expect(client(bootstrap_config: missing).is_enabled?("on")).to be(false)
      expect(log.string).to include("bootstrap failed")
    end
  end

  describe "Unleash::Context and Unleash::Variant" do
    it "read fields as the official SDK's do" do
      ctx = Unleash::Context.new("userId" => 42, session_id: "s", properties: { "countryCode" => "NO" })
      expect(ctx).to have_attributes(user_id: "42", session_id: "s", environment: "default",
                                     properties: { countryCode: "NO" })
      expect(ctx.current_time).to be_a(String)
      expect([ctx.get_by_name("userId"), ctx.get_by_name(:user_id), ctx.get_by_name("countryCode")])
        .to eq(%w[42 42 NO])
      expect { ctx.get_by_name("country_code") }.to raise_error(KeyError)
      expect(ctx.include?("countryCode")).to be(true)
      expect(ctx.as_json).to include(userId: "42", sessionId: "s", properties: { countryCode: "NO" })
      expect(ctx.to_s).to start_with("<Context: user_id=42,session_id=s")
      expect do
        Unleash::Context.new(nil)
      end.to raise_error(ArgumentError, "Unleash::Context must be initialized with a hash.")
      expect(Unleash::Variant.new("name" => "a", "enabled" => true)).to have_attributes(name: "a", enabled: true,
                                                                                        feature_enabled: false)
      expect { Unleash::Variant.new({}) }.to raise_error(ArgumentError, "Variant requires a name.")
      expect(Unleash::Variant.new(name: "a")).to eq(Unleash::Variant.new("name" => "a"))
    end
  end

  describe "loading" do
    def ruby(code)
      Open3.capture3(RbConfig.ruby, "-I", File.expand_path("../../lib", __dir__), "-e", code)
    end

    it "defines Unleash only when asked, makes the official requires no-ops, and refuses to mix" do
      out, = ruby('require "forkflag"; print defined?(Unleash).inspect')
      expect(out).to eq("nil")
      out, err, = ruby('require "forkflag/unleash"; require "unleash"; require "unleash/context"; ' \
                       "print [defined?(Unleash::Client), $LOADED_FEATURES.grep(/unleash/).size > 1].inspect")
      expect([out, err]).to eq(['["constant", true]', ""])
      out, = ruby('require "unleash"; print Unleash::FORKFLAG')
      expect(out).to eq(Forkflag::VERSION)
      _, err, status = ruby('module Unleash; end; require "forkflag/unleash"')
      expect(status.success?).to be(false)
      expect(err).to include("the official unleash gem is already loaded")
      # The official gem in the bundle (activated, not yet required), whichever is required first.
      %w[forkflag/unleash unleash unleash/context].each do |path|
        _, err, status = ruby('Gem.loaded_specs["unleash"] = Gem::Specification.new("unleash", "6.6.0"); ' \
                              "require #{path.inspect}")
        expect([status.success?, err]).to match([false, /both the unleash gem and forkflag's compatibility layer/])
      end
    end
  end
end
