# frozen_string_literal: true

RSpec.describe "Forkflag.client and the environment" do
  let(:payload) { FlagPayloads.payload(FlagPayloads.flag("on")) }

  after do
    Forkflag.current_client&.close
    Forkflag.client = nil
  end

  it "reads every FORKFLAG_* variable into the option it names" do
    env = {
      "FORKFLAG_URL" => "http://127.0.0.1:1/api", "FORKFLAG_TOKEN" => "t", "FORKFLAG_APP_NAME" => "shop",
      "FORKFLAG_REFRESH_INTERVAL" => "2.5", "FORKFLAG_MAX_PAYLOAD_BYTES" => "1000",
      "FORKFLAG_DISABLE_METRICS" => "true", "FORKFLAG_TLS_VERIFY" => "off", "FORKFLAG_BACKUP_PATH" => "false",
      "FORKFLAG_PROJECT" => " ", "UNRELATED" => "x"
    }
    expect(Forkflag.options_from_env(env)).to eq(
      url: "http://127.0.0.1:1/api", token: "t", app_name: "shop", refresh_interval: 2.5,
      max_payload_bytes: 1000, disable_metrics: true, tls_verify: false, backup_path: false
    )
    expect(Forkflag.options_from_env("FORKFLAG_BACKUP_PATH" => "/tmp/b.json")).to eq(backup_path: "/tmp/b.json")
  end

  it "names the variable and the value when one cannot be read" do
    expect { Forkflag.options_from_env("FORKFLAG_TIMEOUT" => "soon") }
      .to raise_error(ArgumentError, /FORKFLAG_TIMEOUT must be a number of seconds, got "soon"/)
    expect { Forkflag.options_from_env("FORKFLAG_TLS_VERIFY" => "maybe") }
      .to raise_error(ArgumentError, /FORKFLAG_TLS_VERIFY must be one of .*got "maybe"/)
    expect { Forkflag.options_from_env("FORKFLAG_MAX_PAYLOAD_BYTES" => "1.5") }
      .to raise_error(ArgumentError, /FORKFLAG_MAX_PAYLOAD_BYTES must be an integer/)
  end

  it "builds the application's client from FORKFLAG_FILE on first use, once" do
    FlagPayloads.with_flags_file(payload) do |path|
      old = ENV.fetch("FORKFLAG_FILE", nil)
      ENV["FORKFLAG_FILE"] = path
      begin
        expect(Forkflag.configured?).to be(true)
        expect(Forkflag.enabled?("on")).to be(true)
        expect(Forkflag.client).to be(Forkflag.client)
        expect(Forkflag.client.config.file).to eq(path)
      ensure
        ENV["FORKFLAG_FILE"] = old
      end
    end
  end

  it "raises a clear error when nothing is configured" do
    saved = %w[FORKFLAG_URL FORKFLAG_FILE].to_h { |v| [v, ENV.fetch(v, nil)] }
    saved.each_key { |v| ENV.delete(v) }
    expect(Forkflag.configured?).to be(false)
    expect { Forkflag.client }.to raise_error(Forkflag::Error, /no forkflag client is configured.*FORKFLAG_URL/)
  ensure
    saved.each { |v, value| ENV[v] = value if value }
  end

  it "answers default: only for flags the configuration lacks" do
    flags = FlagPayloads.payload(FlagPayloads.flag("on"), FlagPayloads.flag("off", enabled: false))
    Forkflag.configure(bootstrap: flags)
    expect(Forkflag.enabled?("missing")).to be(false)
    expect(Forkflag.enabled?("missing", default: true)).to be(true)
    expect(Forkflag.enabled?(:missing, { userId: "1" }, default: 1)).to be(true)
    expect(Forkflag.enabled?("off", default: true)).to be(false)
    expect(Forkflag.enabled?("on", nil, default: false)).to be(true)
    expect { Forkflag.enabled?(false, default: true) }.to raise_error(TypeError, /flag name must be/)
  end

  it "configure replaces the client and closes the one before" do
    first = Forkflag.configure(bootstrap: payload)
    second = Forkflag.configure(bootstrap: FlagPayloads.payload)
    expect(first.closed?).to be(true)
    expect(Forkflag.client).to be(second)
    expect(Forkflag.enabled?("on")).to be(false)
    expect(Forkflag.variant("on").name).to eq("disabled")
  end
end
