# frozen_string_literal: true

RSpec.describe Forkflag::Context do
  it "takes keywords or a Hash, snake_case or camelCase, Symbols or Strings" do
    a = described_class.new(user_id: "1", session_id: "s", remote_address: "10.0.0.1", environment: "prod",
                            app_name: "web", properties: { plan: "pro" })
    b = described_class.new({ "userId" => "1", "sessionId" => "s", "remoteAddress" => "10.0.0.1",
                              "environment" => "prod", "appName" => "web", "properties" => { "plan" => "pro" } })
    expect(a).to eq(b)
    expect(a.to_h).to eq(user_id: "1", session_id: "s", remote_address: "10.0.0.1", environment: "prod",
                         app_name: "web", properties: { "plan" => "pro" })
  end

  it "converts values to text once" do
    ctx = described_class.new(user_id: 42, properties: { "tier" => 3, flag: true, gone: nil })
    expect(ctx.user_id).to eq("42")
    expect(ctx.properties).to eq("tier" => "3", "flag" => "true")
    expect(ctx.properties).to be_frozen
  end

  it "takes current_time as a Time or an ISO-8601 String" do
    t = Time.utc(2024, 5, 1, 12, 0, 0)
    expect(described_class.new(current_time: t).current_time).to eq(t)
    expect(described_class.new(current_time: "2024-05-01T14:00:00+02:00").current_time).to eq(t)
  end

  it "raises ArgumentError for an unreadable current_time, naming it" do
    expect { described_class.new(current_time: "yesterday") }
      .to raise_error(ArgumentError, /current_time must be a Time or an ISO-8601 String.*got "yesterday"/)
  end

  it "reads any other top-level key as a custom field, as a Hash context does" do
    client = Forkflag::Client.new(bootstrap: FlagPayloads.payload(
      FlagPayloads.flag("pro", strategies: [{ name: "default", constraints: [
                          FlagPayloads.constraint("plan", "IN", values: ["pro"])
                        ] }])
    ))
    ctx = described_class.new(plan: "pro", "region" => "eu")
    expect(ctx.properties).to eq("plan" => "pro", "region" => "eu")
    expect(client.enabled?("pro", ctx)).to be(true)
    expect(client.enabled?("pro", { plan: "pro" })).to be(true)
    # One under properties: wins over a top-level one, in both.
    both = { plan: "free", properties: { plan: "pro" } }
    expect(client.enabled?("pro", described_class.new(both))).to be(true)
    expect(client.enabled?("pro", both)).to be(true)
  ensure
    client&.close
  end

  it "raises ArgumentError for a custom field name that is not valid UTF-8" do
    expect { described_class.new("plan\xff" => 1) }
      .to raise_error(ArgumentError, /custom context field name must be valid UTF-8 text, got "plan\\xFF"/)
  end

  it "gives the keys of every standard field from the native table" do
    expect(described_class::KEYS).to be_frozen
    expect(described_class::KEYS).to include(userId: :user_id, user_id: :user_id, currentTime: :current_time,
                                             environment: :environment, properties: :properties)
    expect(described_class::KEYS.size).to eq(12)
  end

  it "raises TypeError for properties that are not a Hash or keys that are not names" do
    expect { described_class.new(properties: [1]) }.to raise_error(TypeError, /properties must be a Hash/)
    expect { described_class.new(properties: { 1 => "x" }) }
      .to raise_error(TypeError, /property names must be Strings or Symbols, got 1/)
    expect { described_class.new("user_id") }.to raise_error(TypeError, /takes a Hash or keywords/)
  end

  it "evaluates like the equivalent Hash" do
    json = FlagPayloads.payload(
      FlagPayloads.flag("a", strategies: [FlagPayloads.rollout(50, stickiness: "userId", group_id: "a")]),
      FlagPayloads.flag("b", strategies: [{ name: "remoteAddress", parameters: { IPs: "10.0.0.0/8" } }]),
      FlagPayloads.flag("c", strategies: [{ name: "default", constraints: [
                          FlagPayloads.constraint("currentTime", "DATE_AFTER", value: "2024-01-01T00:00:00Z")
                        ] }])
    )
    client = Forkflag::Client.new(bootstrap: json)
    100.times do |i|
      hash = { userId: i.to_s, remoteAddress: "10.0.#{i}.1",
               currentTime: "2023-12-31T23:59:#{format("%02d", i % 60)}Z" }
      ctx = described_class.new(hash)
      %w[a b c].each { |flag| expect(client.enabled?(flag, ctx)).to eq(client.enabled?(flag, hash)) }
    end
  end

  it "cannot be allocated without its native state" do
    expect { described_class.allocate }.to raise_error(TypeError)
  end
end
