# frozen_string_literal: true

# The native helpers the Ruby facade calls (`_` names) are private: a
# user's completion, `public_methods` and documentation show the public API
# only. `rake gem:check` also proves that the installed gem has none of the
# test hooks at all.
RSpec.describe "native methods" do
  # (Ruby's own __send__ and __id__ aside.)
  let(:underscored) { ->(names) { names.grep(/\A_(?!_)/) } }

  it "are private on Forkflag::Client, its class and Forkflag" do
    expect(underscored.call(Forkflag::Client.public_instance_methods)).to be_empty
    expect(underscored.call(Forkflag::Client.singleton_methods)).to be_empty
    expect(underscored.call(Forkflag::Client.public_methods)).to be_empty
    expect(underscored.call(Forkflag.singleton_methods)).to be_empty
    expect(Forkflag::Client.private_instance_methods).to include(:_stop, :_wait_until_ready, :_stats)
    expect(Forkflag::Client.private_methods).to include(:_build)
  end

  it "are private on Forkflag::Context and Forkflag::Variant" do
    [Forkflag::Context, Forkflag::Variant].each do |klass|
      expect(underscored.call(klass.public_instance_methods)).to be_empty, klass.name
      expect(underscored.call(klass.singleton_methods)).to be_empty, klass.name
    end
  end

  it "leave the public API callable as before" do
    client = Forkflag::Client.new(bootstrap: FlagPayloads.payload(FlagPayloads.flag("f")))
    expect(client.enabled?("f")).to be(true)
    expect(client.stats[:flags]).to eq(1)
    expect(client.inspect).to eq("#<Forkflag::Client bootstrap flags=1>")
    expect { client._stats }.to raise_error(NoMethodError, /private method/)
  ensure
    client&.close
  end
end
