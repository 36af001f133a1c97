# frozen_string_literal: true

require "forkflag/rack"

# What a wrong argument raises: TypeError or ArgumentError naming the
# argument and what was expected, for objects that have no methods to ask
# (BasicObject) or whose methods raise. hostile_input_spec.rb tries every
# public method with many more values; this spec reads the messages.
RSpec.describe "argument errors" do
  let(:flags) { FlagPayloads.payload(FlagPayloads.flag("f")) }
  let(:inspect_raises) do
    Object.new.tap { |o| o.define_singleton_method(:inspect) { raise "inspect called" } }
  end
  let(:to_str_integer) { Object.new.tap { |o| o.define_singleton_method(:to_str) { 5 } } }

  def client(**options)
    Forkflag::Client.new(bootstrap: flags, **options).tap { |c| @clients << c }
  end

  before { @clients = [] }
  after { @clients.each(&:close) }

  it "names the option and the object's class for a BasicObject, never calling its methods" do
    {
      app_name: /option :app_name must be a String, got an instance of BasicObject/,
      refresh_interval: /option :refresh_interval must be a positive number of seconds, got an instance of BasicObject/,
      disable_metrics: /option :disable_metrics must be true or false, got an instance of BasicObject/,
      custom_headers: /option :custom_headers must be a Hash .*, or a Proc giving one, got an instance of BasicObject/,
      logger: /option :logger must respond to debug, info, warn and error, got an instance of BasicObject/,
      max_payload_bytes: /option :max_payload_bytes must be a positive Integer, got an instance of BasicObject/,
      file: /option :file must be a path \(a String or a Pathname\), got an instance of BasicObject/
    }.each do |option, message|
      expect { client(option => BasicObject.new) }.to raise_error(TypeError, message)
    end
  end

  it "says when to_str answers no String, and never calls a raising inspect" do
    expect { client(app_name: to_str_integer) }
      .to raise_error(TypeError,
                      /option :app_name must be a String, got #<Object.* whose to_str does not return a String/)
    expect { client(environment: inspect_raises) }
      .to raise_error(TypeError, /option :environment must be a String, got an instance of Object/)
  end

  it "bounds numbers the native client cannot hold" do
    expect { client(metrics_interval: 2**64) }
      .to raise_error(ArgumentError,
                      /:metrics_interval must be a positive number of seconds \(at most 10{9}\), got 1844/)
    expect { client(timeout: Float::NAN) }.to raise_error(ArgumentError, /option :timeout .* got NaN/)
    expect { client(max_payload_bytes: 2**64) }.to raise_error(ArgumentError, /at most 9223372036854775807/)
  end

  it "refuses text that cannot travel in a request, without printing a token" do
    expect { client(app_name: "a\0b") }.to raise_error(ArgumentError, /option :app_name must not contain line breaks/)
    expect { client(app_name: "\xff".b) }.to raise_error(ArgumentError, /option :app_name must be valid UTF-8 text/)
    expect { client(custom_headers: { "X-A" => "a\r\nb" }) }
      .to raise_error(ArgumentError, /the value of X-A must not contain line breaks/)
    error = begin
      Forkflag::Client.new(url: "http://127.0.0.1:9/api", app_name: "a", token: "secret-\0-token")
    rescue ArgumentError => e
      e
    end
    expect(error.message).to eq("option :token must not contain line breaks or control characters")
    expect(error.cause).to be_nil
  end

  it "names option :url and what the native parser finds wrong with it" do
    server = { app_name: "a", token: "t", backup_path: false }
    {
      "ftp://example.com/api" => %r{URL "ftp://example.com/api": the scheme must be http or https},
      "http://example.com/api?x=1" => /URL .*a query string or fragment is not allowed/,
      "http://user:secret@example.com/api" => %r{URL "http://\*\*\*@example.com/api": user information},
      "http://:4242/api" => %r{URL "http://:4242/api": no host},
      "http://example.com:99999/api" => /URL .*bad port "99999"/,
      "example.com/api" => %r{URL "example.com/api": expected http://host}
    }.each do |url, message|
      expect { Forkflag::Client.new(url: url, **server) }
        .to raise_error(ArgumentError, /\Aoption :url: invalid server /) { |e| expect(e.message).to match(message) }
    end
    expect { Forkflag::Client.new(url: "http://user:secret@example.com/api", **server) }
      .to raise_error(ArgumentError) { |e| expect(e.message).not_to include("secret") }
  end

  it "converts another encoding to UTF-8 and copies a String subclass" do
    subclass = Class.new(String)
    c = client(app_name: "caf\u00e9".encode(Encoding::UTF_16LE), environment: subclass.new("prod"))
    expect(c.config.app_name).to eq("café")
    expect(c.config.environment.class).to eq(String)
  end

  it "checks the timeouts of the client's methods" do
    c = client
    expect { c.flush(timeout: BasicObject.new) }
      .to raise_error(TypeError, /flush: timeout: must be a number of seconds, got an instance of BasicObject/)
    expect { c.refresh(timeout: -1) }.to raise_error(ArgumentError, /refresh: timeout: must be zero or more seconds/)
    expect do
      c.wait_until_ready("1")
    end.to raise_error(TypeError, /wait_until_ready: timeout: must be a number of seconds or nil/)
    expect(c.wait_until_ready(Float::INFINITY)).to be(true)
    expect(c.park(timeout: 1e30)).to be(true)
    expect do
      c.update(BasicObject.new)
    end.to raise_error(TypeError, /update takes a JSON String, got an instance of BasicObject/)
  end

  it "names a context field, a property name and a payload key" do
    expect { Forkflag::Context.new(BasicObject.new) }
      .to raise_error(TypeError, /takes a Hash or keywords, got an instance of BasicObject/)
    fields = {}.compare_by_identity.tap { |h| h[BasicObject.new] = 1 }
    expect { Forkflag::Context.new(fields) }
      .to raise_error(TypeError, /a context field name must be a Symbol or a String, got an instance of BasicObject/)
    expect { Forkflag::Context.new("plan\xff" => 1) }
      .to raise_error(ArgumentError, /custom context field name must be valid UTF-8 text, got "plan\\xFF"/)
    expect { Forkflag::Context.new(properties: BasicObject.new) }
      .to raise_error(TypeError, /properties must be a Hash of custom fields, got an instance of BasicObject/)
    expect { Forkflag::Variant.new(name: BasicObject.new) }
      .to raise_error(TypeError, /Variant.new name: must be a String or Symbol, got an instance of BasicObject/)
    expect { Forkflag::Variant.new(name: "x", payload: { type: "string" }) }
      .to raise_error(TypeError, /payload: needs :value/)
    defaults = Hash.new { raise "default proc called" }.merge(type: "string", value: "v")
    expect(Forkflag::Variant.new(name: "x", payload: defaults).payload).to eq(type: "string", value: "v")
  end

  it "checks the application client, ForkSafe and the Rack middleware" do
    expect { Forkflag.client = BasicObject.new }
      .to raise_error(TypeError, /Forkflag.client= takes a Forkflag::Client or nil, got an instance of BasicObject/)
    expect { ForkSafe.register(BasicObject.new) }.to raise_error(ArgumentError, /got an instance of BasicObject/)
    expect { ForkSafe.automatic = "yes" }.to raise_error(TypeError, /ForkSafe.automatic= must be true or false/)
    expect { Forkflag.options_from_env("FORKFLAG_URL" => 5) }.to raise_error(TypeError, /FORKFLAG_URL must be a String/)
    expect { Forkflag::Rack::Context.new(->(_) {}, user_id: "user") }
      .to raise_error(TypeError, /option :user_id must respond to call, got "user"/)
    expect { Forkflag::Rack.context(BasicObject.new) }.to raise_error(TypeError, /env must be a Rack env \(a Hash\)/)
    frozen = { "REMOTE_ADDR" => "10.0.0.1" }.freeze
    expect(Forkflag::Rack.context(frozen).remote_address).to eq("10.0.0.1")
  end
end
