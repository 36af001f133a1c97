# frozen_string_literal: true

RSpec.describe "GET /flags", type: :request do
  def answer
    JSON.parse(response.body)
  end

  it "answers from config/flags.json, without the network" do
    get "/flags", params: { names: "new-checkout", variants: "banner" }
    blue = { "name" => "blue", "enabled" => true, "payload" => { "type" => "json", "value" => '{"color":"blue"}' } }
    expect([response.status, answer["flags"], answer["variants"]]).to eq([200, { "new-checkout" => false },
                                                                          { "banner" => blue }])
    expect(Forkflag.client.config.url).to be_nil
  end

  it "follows an example's flags", flags: { "new-checkout" => true, "banner" => "red" } do
    get "/flags", params: { variants: "banner" }
    expect(answer["flags"]).to eq("new-checkout" => true)
    expect(answer["variants"]["banner"]).to include("name" => "red", "payload" => nil)
  end

  it "follows with_flags, and the flags file after the block" do
    with_flags("banner" => { variant: "green", payload: { color: "green" } }) do
      get "/flags", params: { variants: "banner" }
      expect(answer["variants"]["banner"]["payload"]).to eq("type" => "json", "value" => '{"color":"green"}')
    end
    get "/flags", params: { variants: "banner" }
    expect(answer["variants"]["banner"]["name"]).to eq("blue")
  end

  it "reaches a process forked inside the example", flags: { "new-checkout" => true } do
    reader, writer = IO.pipe
    pid = fork do
      reader.close
      writer.puts(Forkflag.enabled?("new-checkout"))
      exit!(0)
    end
    writer.close
    expect(reader.read.strip).to eq("true")
    expect(Process.wait2(pid).last.exitstatus).to eq(0)
  end
end
